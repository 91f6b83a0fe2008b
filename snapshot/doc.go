// Package snapshot streams mapkv databases over HTTP: a server that hands
// out a consistent image of a live database, and a client that receives
// one into a file, verified and renamed into place.
//
// # The image
//
// A snapshot is the database file itself as one read transaction sees it
// (mapkv.Tx.WriteTo): exactly Tx.Size() bytes, with the two meta pages
// rebuilt from that transaction. Any HTTP client is therefore a replica
// seeder:
//
//	curl -o replica.db http://127.0.0.1:7070/snapshot
//
// yields a file that mapkv opens. The response carries Content-Length,
// X-Mapkv-Txid (the txid of the image) and X-Mapkv-Page-Size.
//
// # Zero copy
//
// Over plain HTTP/1.x the handler hijacks the connection, writes the
// status line and headers itself, and hands the bare *net.TCPConn to
// Tx.WriteTo, so the page data moves from the page cache to the socket
// with sendfile(2): no read syscalls and no copies through user space.
// (net/http's own sendfile path takes only an *os.File read through its
// shared offset, which would lose the rebuilt meta pages and make
// concurrent snapshots collide.) While it streams, WriteTo bounds the
// socket's unsent queue (TCP_NOTSENT_LOWAT, 64 KiB) so that the kernel
// transmits from the sending side rather than from the client's ACKs;
// that pays on a new connection, which each snapshot is (see
// mapkv.Tx.WriteToStats). Over TLS or HTTP/2 the connection cannot
// be handed over: the bytes are then written from the database's
// read-only mapping through the http.ResponseWriter, a copy per byte, and
// zero copy is off. Put a TLS terminator in front only if you accept that.
//
// On the receiving side, Fetch with a nil Client speaks HTTP/1.1 itself for
// http:// URLs (unless a proxy is configured in the environment) so that
// the body can be spliced from the socket into the file by the kernel;
// with a Client of your own, or for https://, it reads through net/http.
//
// # Writers keep going
//
// A stream is one read transaction: it pins the pages of its state for as
// long as it runs, and commits carry on beside it; mapkv.Stats reports the
// open readers and the pages they pin. A client that disconnects ends its
// stream and its transaction at once. A client that stops reading without
// disconnecting is cut off by the kernel once it has left the stream's
// data unacknowledged for two minutes (TCP_USER_TIMEOUT, on Linux), and an
// http.Server's WriteTimeout, if set, bounds a whole stream.
//
// # Safe by default
//
// Serve listens on 127.0.0.1:7070 unless given another address. A bearer
// token (Options.Token) is compared in constant time; a wrong or missing
// one gets 401. At most Options.MaxConcurrent snapshots stream at once;
// past that the answer is 503 with Retry-After.
//
// # Fetch
//
// Fetch receives into a temporary file beside the destination, fsyncs it,
// opens it read-only with mapkv and runs DB.Check, checks its size and
// txid against the response headers, and only then renames it over the
// destination and fsyncs the directory. A failed, cut-short or corrupt
// transfer leaves the destination untouched and no temporary file behind.
package snapshot
