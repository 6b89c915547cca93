// RAII for libuv handles: the memory of a handle may only be freed from its uv_close callback,
// so the owner gives up the handle with uv_close and the callback deletes it.
#pragma once

#include <uv.h>

#include <utility>

namespace pgadapter {

template <typename T>
class UvHandle {
 public:
  UvHandle() = default;
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  UvHandle(UvHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  UvHandle& operator=(UvHandle&& other) noexcept {
    if (this != &other) { reset(); handle_ = std::exchange(other.handle_, nullptr); }
    return *this;
  }
  ~UvHandle() { reset(); }

  // Allocates a fresh handle; the caller runs uv_*_init on get() right after.
  T* allocate() {
    reset();
    handle_ = new T();
    return handle_;
  }
  // Frees a handle whose uv_*_init failed: libuv never knew it, so it must not be uv_close'd.
  void discard() { delete std::exchange(handle_, nullptr); }
  // Stops callbacks at once (uv_close) and frees the memory when libuv is done with it.
  void reset() {
    if (handle_ == nullptr) return;
    uv_handle_t* h = reinterpret_cast<uv_handle_t*>(std::exchange(handle_, nullptr));
    h->data = nullptr;
    uv_close(h, [](uv_handle_t* closed) { delete reinterpret_cast<T*>(closed); });
  }
  T* get() const { return handle_; }
  explicit operator bool() const { return handle_ != nullptr; }

 private:
  T* handle_ = nullptr;
};

// A one-shot or repeating timer that calls a member of its owner.
template <typename Owner, void (Owner::*Fn)()>
class UvTimer {
 public:
  // False (and the timer stopped) if libuv refused it.
  bool start(uv_loop_t* loop, Owner* owner, uint64_t timeout_ms, uint64_t repeat_ms = 0, bool keep_alive = false) {
    uv_timer_t* t = handle_.allocate();
    if (uv_timer_init(loop, t) != 0) {
      handle_.discard();
      return false;
    }
    t->data = owner;
    if (uv_timer_start(t, [](uv_timer_t* fired) {
          if (fired->data != nullptr) (static_cast<Owner*>(fired->data)->*Fn)();
        }, timeout_ms, repeat_ms) != 0) {
      handle_.reset();
      return false;
    }
    if (!keep_alive) uv_unref(reinterpret_cast<uv_handle_t*>(t));
    return true;
  }
  void stop() { handle_.reset(); }
  bool active() const { return static_cast<bool>(handle_); }
  void set_ref(bool keep_alive) {
    if (!handle_) return;
    auto* h = reinterpret_cast<uv_handle_t*>(handle_.get());
    keep_alive ? uv_ref(h) : uv_unref(h);
  }

 private:
  UvHandle<uv_timer_t> handle_;
};

// A check or prepare handle calling a member of its owner once per loop iteration while started. Unref'd:
// it never keeps the loop alive by itself.
inline int loop_hook_init(uv_loop_t* loop, uv_check_t* h) { return uv_check_init(loop, h); }
inline int loop_hook_init(uv_loop_t* loop, uv_prepare_t* h) { return uv_prepare_init(loop, h); }
inline int loop_hook_start(uv_check_t* h, uv_check_cb cb) { return uv_check_start(h, cb); }
inline int loop_hook_start(uv_prepare_t* h, uv_prepare_cb cb) { return uv_prepare_start(h, cb); }
inline void loop_hook_stop(uv_check_t* h) { uv_check_stop(h); }
inline void loop_hook_stop(uv_prepare_t* h) { uv_prepare_stop(h); }

template <typename T, typename Owner, void (Owner::*Fn)()>
class UvLoopHook {
 public:
  // False if libuv refused it.
  bool start(uv_loop_t* loop, Owner* owner) {
    if (!handle_) {
      T* h = handle_.allocate();
      if (loop_hook_init(loop, h) != 0) {
        handle_.discard();
        return false;
      }
      h->data = owner;
      uv_unref(reinterpret_cast<uv_handle_t*>(h));
    }
    if (active_) return true;
    active_ = loop_hook_start(handle_.get(), [](T* fired) {
                if (fired->data != nullptr) (static_cast<Owner*>(fired->data)->*Fn)();
              }) == 0;
    return active_;
  }
  void stop() {
    if (handle_ && active_) loop_hook_stop(handle_.get());
    active_ = false;
  }

 private:
  UvHandle<T> handle_;
  bool active_ = false;
};

}  // namespace pgadapter
