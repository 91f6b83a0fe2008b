// shim.h declares the few C entry points the benchmark needs from LMDB.
// Each one runs a whole transaction inside a single C call, so the Go side
// crosses into C once per transaction rather than once per key.
#ifndef KVBENCH_LMDB_SHIM_H
#define KVBENCH_LMDB_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

int kv_open(const char *path, size_t mapsize, MDB_env **envp, MDB_dbi *dbip);
int kv_put(MDB_env *env, MDB_dbi dbi, const char *keys, size_t klen,
           const char *vals, size_t vlen, size_t n);
int kv_del(MDB_env *env, MDB_dbi dbi, const char *keys, size_t klen, size_t n);
int kv_get(MDB_env *env, MDB_dbi dbi, const char *keys, size_t klen, size_t n,
           size_t *found, uint64_t *sum);
int kv_scan(MDB_env *env, MDB_dbi dbi, size_t *count, uint64_t *sum);

#endif
