// One nesting limit for sending and receiving: a message nested deeper than every server accepts is refused
// when it is published (ENCODE_FAILED), never published and then dropped by each receiver; a message at the
// limit is delivered, inline (JSON) and as an attachment (msgpack).
const { Cluster, eventsOf, waitFor, waitForEvents } = require('./helpers/cluster');

// A broadcast nests its arguments 4 levels down (message > data > packet > packet.data): with the limit of
// 512 levels (README), an argument may nest 508 arrays and objects.
const ARG_LIMIT = 508;

// `levels` nested arrays and objects, alternating, around `inner`.
function nested(levels, inner) {
  let v = inner;
  for (let i = 0; i < levels; i++) v = i % 2 ? { v } : [v];
  return v;
}

describe('nesting limit', () => {
  let cluster;
  let errors;

  beforeAll(async () => {
    errors = [[], []];
    cluster = new Cluster({ channelPrefix: 'nesting', size: 0 });
    for (let i = 0; i < 2; i++) await cluster.addServer({ errorHandler: (err) => errors[i].push(err) });
    await cluster.waitReady();
  });
  afterEach(async () => {
    await cluster.disconnectClients();
    errors.forEach((e) => e.splice(0));
  });
  afterAll(() => cluster.close());

  const reports = (i) => errors[i].map((e) => `${e.code}: ${e.message}`);

  test.each([
    ['inline', 1],
    ['as an attachment', Buffer.from([1, 2])],
  ])('an argument nested 600 deep is refused at publish with ENCODE_FAILED (%s)', async (_, inner) => {
    const [, onB] = await cluster.connectOnEach();
    cluster.servers[0].io.emit('deep', nested(600, inner));
    await waitFor(() => errors[0].length > 0, 5000, 'the publishing server to report');
    expect(errors[0].map((e) => e.code)).toEqual(['ENCODE_FAILED']);
    expect(errors[0][0].message).toMatch(/too deeply nested/);
    await cluster.barrier();
    expect(eventsOf(onB, 'deep')).toEqual([]);
    expect(reports(1)).toEqual([]); // nothing was published for the receiver to drop
  });

  test.each([
    ['inline', 1],
    ['as an attachment', Buffer.from([1, 2])],
  ])('an argument nested %s at the limit is delivered', async (_, inner) => {
    const [, onB] = await cluster.connectOnEach();
    cluster.servers[0].io.emit('deep', nested(ARG_LIMIT, inner));
    const [[got]] = await waitForEvents(onB, 'deep');
    let v = got;
    for (let i = ARG_LIMIT - 1; i >= 0; i--) v = i % 2 ? v.v : v[0];
    expect(Buffer.isBuffer(inner) ? [...new Uint8Array(v)] : v).toEqual(Buffer.isBuffer(inner) ? [1, 2] : 1);
    expect(reports(0)).toEqual([]);
    expect(reports(1)).toEqual([]);
  });

  test('one level more than the limit is refused at publish', async () => {
    await cluster.connectOnEach();
    cluster.servers[0].io.emit('deep', nested(ARG_LIMIT + 1, 1));
    await waitFor(() => errors[0].length > 0, 5000, 'the publishing server to report');
    expect(errors[0].map((e) => e.code)).toEqual(['ENCODE_FAILED']);
  });
});
