// Loaded with `node --import` into a test's child processes: a connection to anything but loopback
// (or a Unix socket) throws, so a test proves that its code path never needs the network.
import net from 'node:net';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const opts = typeof first === 'object' && first !== null ? first : { port: first, host: args[1] };
  if (!opts.path && !LOOPBACK.has(opts.host ?? 'localhost')) {
    throw new Error(`network blocked in this test: a connection to ${opts.host}:${opts.port} was attempted`);
  }
  return connect.apply(this, args);
};
