// The wasmux plugin SDK: a small mio-like API over the plugin world.
export { IoError, errorName } from "./error";
export { Interest, Readiness } from "./interest";
export { Events } from "./events";
export { Poll, Source } from "./poll";
export { SocketAddress } from "./net";
export { TcpListener, TcpStream, Shutdown, lastError, acceptedPeer } from "./tcp";
export { Level, log, info, warn, error, debug } from "./log";
export { nowNanos, nowMillis, unixSeconds } from "./time";
export { Context, Main } from "./context";
export { serve } from "./serve";
export { ByteBuffer } from "./buffer";
export { Slab } from "./slab";
export { Timer, TimerWheel } from "./timers";
export { Connection, Handler, Server, ServerOptions } from "./server";
export { memoryLimit, maxConnections, memoryGrown, memoryAvailable, freeInHeap } from "./memory";
export { Counter, Gauge, Histogram, CounterSeries, GaugeSeries, HistogramSeries, flushMetrics, metricsReportError } from "./metrics";
