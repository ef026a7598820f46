/*
 * error.h -- the one error convention of dynkv.
 *
 * Every function that acts returns an int: 0 on success, -errno for a system
 * error (-EIO, -ENOSPC, ...), or one of the DKV_E* codes below.  Our codes live
 * in a reserved negative range far below any errno value, so the two can never
 * be confused (LMDB does the same under BerkeleyDB's range).  Predicates return
 * bool.  dkv_strerror() names any of these values, ours or the system's.
 *
 * Where a user needs detail (a config line, a path, a size), the function also
 * fills a caller-supplied `err` buffer; the code alone is for programs.
 */
#ifndef DKV_ERROR_H
#define DKV_ERROR_H

#define DKV_EBASE      (-30800)
#define DKV_ENOTFOUND  (DKV_EBASE - 1)   /* no such key */
#define DKV_ECORRUPT   (DKV_EBASE - 2)   /* stored or received bytes fail a check */
#define DKV_ELOCKED    (DKV_EBASE - 3)   /* another process holds the directory */
#define DKV_ETOOBIG    (DKV_EBASE - 4)   /* key or value past the configured limit */
#define DKV_EFAILED    (DKV_EBASE - 5)   /* store refuses writes after an I/O failure */
#define DKV_EQUORUM    (DKV_EBASE - 6)   /* too few replicas answered */
#define DKV_ETIMEDOUT  (DKV_EBASE - 7)   /* request deadline passed */
#define DKV_EPROTO     (DKV_EBASE - 8)   /* malformed frame or message */
#define DKV_EINVAL     (DKV_EBASE - 9)   /* bad argument or option value */
#define DKV_EBUSY      (DKV_EBASE - 10)  /* operation already running (e.g. a merge) */
#define DKV_ECLOSED    (DKV_EBASE - 11)  /* handle is closing or closed */
#define DKV_EVERSION   (DKV_EBASE - 12)  /* unknown format or protocol version */
#define DKV_ELAST      (DKV_EBASE - 13)

/* A static, human-readable description of rc (ours or -errno).  Never NULL. */
const char *dkv_strerror(int rc);

#endif /* DKV_ERROR_H */
