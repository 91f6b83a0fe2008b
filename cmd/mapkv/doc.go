// Command mapkv looks inside mapkv database files without writing Go: it
// reports, checks, dumps, loads, edits, decodes, compacts, backs up,
// serves and benchmarks them.
//
//	mapkv info DB                      page size, txid, sizes, pages in use and free, buckets
//	mapkv stats DB [BUCKET...]         keys, depth, pages and fill factor per bucket
//	mapkv check DB                     verify everything; exit 3 on corruption
//	mapkv buckets DB [BUCKET]          bucket paths
//	mapkv keys DB BUCKET               keys, with --prefix and --limit
//	mapkv get|put|delete DB BUCKET KEY [VALUE]
//	mapkv pages DB                     what every page is, its txid, checksum and owner
//	mapkv page DB ID...                one page decoded, --hex for its bytes
//	mapkv dump DB [BUCKET...]          mdb_dump's text format
//	mapkv load DB                      from mapkv dump, mdb_dump or db_dump
//	mapkv compact SRC DST              a copy with only live pages
//	mapkv backup DB OUT|-              a consistent copy, kernel to kernel
//	mapkv snapshot serve DB            stream snapshots over HTTP
//	mapkv snapshot fetch URL OUT       receive and verify one
//	mapkv bench                        a quick write and read benchmark
//	mapkv version | help | completion SHELL
//
// Commands that do not write open the file read-only and never create it
// (the engine keeps its lock file, DB-lock, beside it); they run beside a
// process writing the database. Commands that write wait --timeout for
// that process's lock. Bucket paths
// name nested buckets ("a/b" is b inside a); inside a name "\/" is a
// slash, "\\" a backslash and "\xHH" any byte. Keys and values print as
// text when printable and as hex otherwise; --format hex|text|base64
// forces one and says how arguments are read. --json gives scripts the
// output of info, stats, check, buckets, keys, get, pages, version and
// bench. Long operations draw a progress bar on stderr when it is a
// terminal.
//
// Exit status: 0 on success (for check: a clean database), 1 on errors,
// 2 on bad usage, 3 when check finds corruption, 130 when interrupted
// (load and compact stop cleanly: load commits the transaction in
// progress and says how far it got; compact leaves no destination file).
//
// Each command lives in command_<name>.go and registers itself; main.go
// only calls execute, which tests call too. Tests run the commands in
// process and, through testscript (testdata/script), as a separate
// binary.
package main
