// shim.c: whole LMDB transactions in one C call each. Written for kvbench;
// see lmdb.go for why the loops live on the C side.
#include "shim.h"

// kv_open creates the environment at path (a directory) with the given map
// size and opens the unnamed main database. MDB_NOTLS ties reader slots to
// transactions rather than threads, so read transactions may start on any
// goroutine's thread. Sync flags are left at LMDB's durable defaults.
int kv_open(const char *path, size_t mapsize, MDB_env **envp, MDB_dbi *dbip) {
	MDB_env *env;
	MDB_txn *txn;
	int rc = mdb_env_create(&env);
	if (rc) return rc;
	if ((rc = mdb_env_set_mapsize(env, mapsize)) ||
	    (rc = mdb_env_open(env, path, MDB_NOTLS, 0644)) ||
	    (rc = mdb_txn_begin(env, NULL, 0, &txn))) {
		mdb_env_close(env);
		return rc;
	}
	if ((rc = mdb_dbi_open(txn, NULL, 0, dbip))) {
		mdb_txn_abort(txn);
		mdb_env_close(env);
		return rc;
	}
	if ((rc = mdb_txn_commit(txn))) {
		mdb_env_close(env);
		return rc;
	}
	*envp = env;
	return 0;
}

// kv_put stores n fixed-size pairs, packed back to back in keys and vals, in
// one write transaction and commits it (synced, by LMDB's defaults).
int kv_put(MDB_env *env, MDB_dbi dbi, const char *keys, size_t klen,
           const char *vals, size_t vlen, size_t n) {
	MDB_txn *txn;
	MDB_val k, v;
	int rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc) return rc;
	k.mv_size = klen;
	v.mv_size = vlen;
	for (size_t i = 0; i < n; i++) {
		k.mv_data = (void *)(keys + i * klen);
		v.mv_data = (void *)(vals + i * vlen);
		if ((rc = mdb_put(txn, dbi, &k, &v, 0))) {
			mdb_txn_abort(txn);
			return rc;
		}
	}
	return mdb_txn_commit(txn);
}

// kv_del deletes n fixed-size keys in one write transaction. A missing key is
// an error: the benchmark only deletes keys it stored.
int kv_del(MDB_env *env, MDB_dbi dbi, const char *keys, size_t klen, size_t n) {
	MDB_txn *txn;
	MDB_val k;
	int rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc) return rc;
	k.mv_size = klen;
	for (size_t i = 0; i < n; i++) {
		k.mv_data = (void *)(keys + i * klen);
		if ((rc = mdb_del(txn, dbi, &k, NULL))) {
			mdb_txn_abort(txn);
			return rc;
		}
	}
	return mdb_txn_commit(txn);
}

// kv_get looks up n fixed-size keys in one read transaction, counting hits
// and folding each value's length and first byte into *sum so that the value
// is really read.
int kv_get(MDB_env *env, MDB_dbi dbi, const char *keys, size_t klen, size_t n,
           size_t *found, uint64_t *sum) {
	MDB_txn *txn;
	MDB_val k, v;
	size_t f = 0;
	uint64_t s = 0;
	int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc) return rc;
	k.mv_size = klen;
	for (size_t i = 0; i < n; i++) {
		k.mv_data = (void *)(keys + i * klen);
		rc = mdb_get(txn, dbi, &k, &v);
		if (rc == MDB_NOTFOUND) continue;
		if (rc) {
			mdb_txn_abort(txn);
			return rc;
		}
		f++;
		s += v.mv_size + (v.mv_size ? ((const unsigned char *)v.mv_data)[0] : 0);
	}
	mdb_txn_abort(txn);
	*found = f;
	*sum = s;
	return 0;
}

// kv_scan walks the whole database in key order in one read transaction.
int kv_scan(MDB_env *env, MDB_dbi dbi, size_t *count, uint64_t *sum) {
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t c = 0;
	uint64_t s = 0;
	int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc) return rc;
	if ((rc = mdb_cursor_open(txn, dbi, &cur))) {
		mdb_txn_abort(txn);
		return rc;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		c++;
		s += k.mv_size + v.mv_size;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != MDB_NOTFOUND) return rc;
	*count = c;
	*sum = s;
	return 0;
}
