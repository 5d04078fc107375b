// A minimal RFC 6455 transport for the red-envelope protocol: small binary messages, one protocol
// message per frame. An alternative to the `ws` package (selected by --ws-impl lite) that keeps
// per-connection cost to one net.Socket plus one small LiteConn object: no closure per connection
// or message, no receiver or sender object per connection, shared buffers for reads and writes.
// The same connections also speak the original experiment's raw-TCP framing (`raw`, or a tcp://
// URL): no handshake, the messages back to back, each cut by its own u16 length; close() is the
// TCP FIN. Release/adopt, timeouts and buffers are shared by both framings.
//
// This module is the entry (import from here); the parts live in wslite/, split along the roles
// of the `ws` package:
//   shared.ts     ready states, connection flags, the handler contract, endpoint settings, LiteError
//   handshake.ts  the opening handshakes (no extensions, no subprotocols) as functions of the bytes
//   receiver.ts   the frame parser and the raw-TCP cutter, over the LiteConn's parser fields
//   sender.ts     frames cut from a shared slab (one socket.write per message), client masks
//   conn.ts       LiteConn (state, send/close/release) and the module-level socket listeners
//   endpoint.ts   createLiteServer, adoptLite, LiteClient: what all connections of one side share
export { LiteConn } from './wslite/conn.ts';
export { LiteClient, adoptLite, createLiteServer } from './wslite/endpoint.ts';
export { MAX_HANDSHAKE_BYTES, WS_GUID, acceptKey } from './wslite/handshake.ts';
export { isValidCloseCode } from './wslite/sender.ts';
export { LiteError, ReadyState, type LiteEndpointOptions, type LiteHandler, type MessageConn } from './wslite/shared.ts';
