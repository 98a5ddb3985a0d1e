// A scenario for a line protocol that answers each line in upper case
// (assembly/test-plugins/fragile-lines): two clients, three lines each, and
// every answer must be exactly the line in upper case, in order.
export default function* (net) {
  const lines = ['hello\n', 'simulated world\n', 'bye\n'];
  const expected = lines.map((l) => l.toUpperCase()).join('');
  const clients = [net.connect(), net.connect()];
  for (const line of lines) {
    for (const c of clients) c.write(line);
    yield;
  }
  for (const c of clients) {
    const done = yield* net.until(() => c.text.length >= expected.length || c.wasReset, 2000);
    if (c.wasReset) continue;
    if (!done || c.text !== expected)
      throw new Error(`client #${c.id} got ${JSON.stringify(c.text)}, expected ${JSON.stringify(expected)}`);
    c.close();
  }
}
