/*
 * peer.h -- the messages nodes send each other.
 *
 * PEER FRAMES (TCP, the client port; man/dynkv-protocol.7, PEER MESSAGES)
 *   Framed like client frames: 4-byte big-endian length, then
 *   [version, type, request_id, body] with a type >= 128.  Peers talk in
 *   one-way messages (world.h, PEERS): every body starts with the sender's
 *   address, and an answer is a message of its own, sent to that address
 *   on the answering node's connection, carrying the request's id.
 *
 *   FWD       128  [from, payload]        a client request (the payload of
 *                                         its frame, untouched) for a node
 *                                         that can coordinate it
 *   FWDREPLY  129  [from, frame]          the coordinator's whole reply
 *                                         frame, for the forwarding node to
 *                                         pass on to its client
 *   RGET      130  [from, key]            read a replica
 *   RVALUE    131  [from, code, object]   its answer: code 0 and the
 *                                         stored object (nil: not found),
 *                                         or an error code (PROTO_ERRORS)
 *   RPUT      132  [from, key, object, ack]  merge object into the replica
 *                                         (ack false: read repair, no
 *                                         answer wanted)
 *   RACK      133  [from, code]           its answer once applied (and
 *                                         durable under sync = always)
 *   HOFF      135  [from, owner, [key, object, ...]]  hinted handoff: a
 *                                         fallback delivers what it holds
 *                                         for owner (the receiver's node
 *                                         id); merge every pair, make it
 *                                         durable, then answer
 *   HACK      136  [from, code, count] or [from, code, count, delay]
 *                                         its answer: code 0 once every
 *                                         pair is merged and synced
 *                                         (whatever the sync policy);
 *                                         delay: the owner's loop delay in
 *                                         microseconds (pace.h), which the
 *                                         sender's rate yields to
 *   AAEREQ    137  [from, partition, first, n, count, root]  anti-entropy
 *                                         (aae.h): send your tree's root and
 *                                         its coded symbols [first, first +
 *                                         n); count and root are the
 *                                         asker's, so that equal trees cost
 *                                         no symbols
 *   AAESYM    138  [from, partition, code, count, root, run]  the answer:
 *                                         code 0 and the tree's item count,
 *                                         root hash and a run of symbols
 *                                         (riblt.h's wire form; empty when
 *                                         n was 0 or the roots are equal),
 *                                         or an error code (OVERLOAD: no
 *                                         tree ready)
 *   AAEWANT   139  [from, partition, all, lacking, [keyhash, ...]]  send
 *                                         me (RPUT, no ack) your objects of
 *                                         these key hashes, or of every key
 *                                         of the partition when all is true;
 *                                         lacking: I hold none of these keys
 *                                         (so tombstones past their grace
 *                                         are not sent: reaper.h)
 *   REAPQ     140  [from, partition, [key, objhash, ...]]  tombstone reaping
 *                                         (reaper.h): may these tombstones
 *                                         go?  (you hold the same object,
 *                                         or none, and no hint of the key)
 *   REAPA     141  [from, code, [bool, ...]]  the answer to a REAPQ (per
 *                                         key: yes) or a REAP (per key:
 *                                         dropped)
 *   REAP      142  [from, partition, [key, objhash, ...]]  drop each key
 *                                         whose stored object still hashes
 *                                         to objhash
 *   XREQ      143  [from, partition, cursor, max_bytes]  ownership
 *                                         transfer (transfer.h): send me
 *                                         your keys of the partition whose
 *                                         ring positions are >= cursor, in
 *                                         position order, about max_bytes
 *   XDATA     144  [from, partition, code, next, done, keys, bytes,
 *                 empty, [key, object, ...]]  the answer: code 0, the
 *                                         pairs, the cursor to ask next,
 *                                         done when no key is past them,
 *                                         the partition's live keys and
 *                                         bytes (for progress), and a
 *                                         bitmap (bit p of byte p / 8) of
 *                                         the partitions that hold no key
 *                                         at the sender now; or an error
 *                                         code.  A tenth element, delay,
 *                                         before the pairs: the sender's
 *                                         loop delay in us (pace.h; left
 *                                         out when 0)
 *   RGET and RPUT may carry a fifth (RPUT) or third (RGET) element, owner:
 *   a node id, sent to a fallback standing in for that primary (sloppy
 *   quorum): the fallback keeps the object, or reads it, in its hint
 *   store for owner instead of its partition stores.
 *   SYNC      134  [from, reply, entries] or [from, reply, entries,
 *                                         epochs]: full membership state
 *                                         (push-pull); reply true asks for
 *                                         the receiver's state back;
 *                                         epochs, the sender's chain of
 *                                         ring epochs (epochs.h,
 *                                         epochs_pack)
 *
 * GOSSIP DATAGRAMS (UDP, the same port number)
 *   One msgpack array per datagram, no length prefix:
 *     [version, kind, from_id, from_addr, seq, target, entries]
 *   kind 1 PING, 2 ACK, 3 PINGREQ (probe target for me); seq is the
 *   prober's, echoed by the ACK; target is an address (PINGREQ) or nil.
 *
 * ENTRIES (SYNC and gossip): one per member,
 *     [id, addr, status, version, incarnation, liveness, keys, keys_stamp, actor]
 *   status 0 joining, 1 valid, 2 leaving, 3 removed; liveness 0 up,
 *   1 suspect, 2 down; keys (and the member's own wall clock when it
 *   counted them, keys_stamp) are what the member last reported holding;
 *   actor is the member's data directory (its NODE file's actor, never
 *   0), the identity behind the id.  An entry whose actor the sender does
 *   not know is written without it (8 elements, the form every entry had
 *   before actors were carried) and decodes with actor 0, which matches
 *   any actor.  A tenth element, progress, is the member's progress along
 *   the ring epochs (epochs.h): [seq, ack number, ack digest, sync number,
 *   sync digest, read number, read digest]; an entry without it (9 or 8
 *   elements) reports none.  Entries of any other length are refused.
 */
#ifndef DKV_PEER_H
#define DKV_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "mpr.h"

#define PEER_MAX_ADDR   255u   /* longest id or address */
#define PEER_MAX_ENTRIES 4096u
#define PEER_MAX_HOFF   4096u  /* pairs in one HOFF */
#define PEER_MAX_WANT   65536u /* key hashes in one AAEWANT */
#define PEER_MAX_REAP   4096u  /* keys in one REAPQ, REAP or REAPA */

typedef enum peer_type {
	PEER_FWD = 128,
	PEER_FWDREPLY = 129,
	PEER_RGET = 130,
	PEER_RVALUE = 131,
	PEER_RPUT = 132,
	PEER_RACK = 133,
	PEER_SYNC = 134,
	PEER_HOFF = 135,
	PEER_HACK = 136,
	PEER_AAEREQ = 137,
	PEER_AAESYM = 138,
	PEER_AAEWANT = 139,
	PEER_REAPQ = 140,
	PEER_REAPA = 141,
	PEER_REAP = 142,
	PEER_XREQ = 143,
	PEER_XDATA = 144,
} peer_type;

typedef enum gossip_kind {
	GOSSIP_PING = 1,
	GOSSIP_ACK = 2,
	GOSSIP_PINGREQ = 3,
} gossip_kind;

/* A member entry; strings borrow from the message (not NUL-terminated). */
/* A member's progress along the ring epochs (epochs.h): seq orders its
 * reports (the member's own counter: the higher one wins); each epoch is
 * [number, digest]. */
typedef struct peer_progress {
	uint64_t seq;
	uint64_t ack[2], sync[2], read[2];
} peer_progress;

typedef struct peer_entry {
	const char *id, *addr;
	size_t idlen, addrlen;
	uint32_t status, liveness;
	uint64_t version, incarnation, keys, keys_stamp;
	uint64_t actor;        /* the member's data directory; 0: not known */
	bool has_progress;     /* it reported progress (needs an actor) */
	peer_progress progress;
} peer_entry;

typedef struct peer_msg {
	uint32_t type;
	uint64_t id;
	char from[PEER_MAX_ADDR + 1];
	const uint8_t *data;   /* FWD payload, FWDREPLY frame, RVALUE/RPUT object,
	                        * XDATA empty bitmap */
	size_t datalen;
	bool has_data;         /* RVALUE: false = not found */
	const uint8_t *key;    /* RGET, RPUT */
	size_t keylen;
	uint32_t code;         /* RVALUE, RACK */
	bool flag;             /* RPUT: ack wanted; SYNC: reply wanted;
	                        * AAEWANT: all keys; XDATA: done */
	bool lacking;          /* AAEWANT: the asker holds none of them */
	char owner[PEER_MAX_ADDR + 1];   /* RGET, RPUT (optional), HOFF: the
	                                  * hint's owner; "" when none */
	uint64_t count;        /* HACK: pairs applied; AAEREQ, AAESYM: items;
	                        * XDATA: the partition's keys */
	uint32_t delay_us;     /* HACK: the owner's loop delay, XDATA: the
	                        * source's (0 when absent) */
	uint32_t partition;    /* AAE*: the partition */
	uint64_t first, n;     /* AAEREQ: symbols asked; XREQ: cursor and
	                        * max_bytes; XDATA: next cursor, bytes */
	uint64_t root;         /* AAEREQ, AAESYM: the tree's root hash */
	const uint8_t *chain;  /* SYNC: the sender's ring epochs (epochs_pack's
	                        * bytes, checked only as msgpack); NULL: none */
	size_t chainlen;
	mpr entries;           /* SYNC: cursor over nentries entries; HOFF:
	                        * over nentries bins (key, object, ...);
	                        * AAEWANT: over nentries key hashes */
	uint64_t nentries;
} peer_msg;

typedef struct gossip_msg {
	uint32_t kind;
	char from_id[PEER_MAX_ADDR + 1];
	char from_addr[PEER_MAX_ADDR + 1];
	uint64_t seq;
	char target[PEER_MAX_ADDR + 1];   /* "" when nil */
	mpr entries;
	uint64_t nentries;
} gossip_msg;

/* True iff a frame's payload has a peer type (>= 128): *type and *id set. */
bool peer_is_peer_frame(const void *payload, size_t len, uint32_t *type, uint64_t *id);

/* Decode a peer frame's payload.  0 or DKV_EPROTO (reason in err).  Every
 * entry of a SYNC has been checked when it returns 0. */
int peer_decode(const void *payload, size_t len, peer_msg *m, char *err, size_t errlen);
/* Decode a gossip datagram.  0 or DKV_EPROTO. */
int gossip_decode(const void *buf, size_t len, gossip_msg *m);
/* The next entry of a SYNC or gossip message: 1, 0 at the end, DKV_EPROTO. */
int peer_entry_next(mpr *entries, uint64_t *left, peer_entry *e);

/* Encoders append one whole frame (length prefix included); 0, -ENOMEM or
 * DKV_ETOOBIG past 4 GiB (sb as it was). */
int peer_encode_fwd(msgpack_sbuffer *sb, uint64_t id, const char *from,
		    const void *payload, size_t len);
int peer_encode_fwdreply(msgpack_sbuffer *sb, uint64_t id, const char *from,
			 const void *frame, size_t len);
int peer_encode_rget(msgpack_sbuffer *sb, uint64_t id, const char *from,
		     const void *key, size_t klen, const char *owner);
/* obj NULL: not found. */
int peer_encode_rvalue(msgpack_sbuffer *sb, uint64_t id, const char *from, uint32_t code,
		       const void *obj, size_t objlen);
int peer_encode_rput(msgpack_sbuffer *sb, uint64_t id, const char *from, const void *key,
		     size_t klen, const void *obj, size_t objlen, bool ack, const char *owner);
int peer_encode_rack(msgpack_sbuffer *sb, uint64_t id, const char *from, uint32_t code);
/* delay_us: the owner's loop delay (pace.h); 0 leaves the element out. */
int peer_encode_hack(msgpack_sbuffer *sb, uint64_t id, const char *from, uint32_t code,
		     uint64_t count, uint32_t delay_us);
/* A HOFF frame: begin with the number of pairs, pack each pair, end. */
int peer_hoff_begin(msgpack_sbuffer *sb, msgpack_packer *pk, size_t *start, uint64_t id,
		    const char *from, const char *owner, uint32_t npairs);
int peer_hoff_pair(msgpack_packer *pk, const void *key, size_t klen, const void *obj,
		   size_t objlen);
int peer_hoff_end(msgpack_sbuffer *sb, size_t start);
int peer_encode_aaereq(msgpack_sbuffer *sb, uint64_t id, const char *from, uint32_t partition,
		       uint64_t first, uint64_t n, uint64_t count, uint64_t root);
int peer_encode_aaesym(msgpack_sbuffer *sb, uint64_t id, const char *from, uint32_t partition,
		       uint32_t code, uint64_t count, uint64_t root, const void *run, size_t runlen);
int peer_encode_aaewant(msgpack_sbuffer *sb, uint64_t id, const char *from, uint32_t partition,
			bool all, bool lacking, const uint64_t *keyhashes, size_t n);
/* REAPQ and REAP: begin with the number of pairs, pack each (key,
 * objhash), end.  REAPA: begin with the number of answers, pack each
 * (msgpack_pack_true/false), end. */
int peer_reap_begin(msgpack_sbuffer *sb, msgpack_packer *pk, size_t *start, uint32_t type,
		    uint64_t id, const char *from, uint32_t partition, uint32_t npairs);
int peer_reap_pair(msgpack_packer *pk, const void *key, size_t klen, uint64_t objhash);
int peer_reapa_begin(msgpack_sbuffer *sb, msgpack_packer *pk, size_t *start, uint64_t id,
		     const char *from, uint32_t code, uint32_t n);
int peer_reap_end(msgpack_sbuffer *sb, size_t start);
/* The next pair of a decoded REAPQ/REAP, the next answer of a REAPA:
 * 1, 0 at the end, DKV_EPROTO. */
int peer_reap_next(mpr *r, uint64_t *left, const uint8_t **key, size_t *klen,
		   uint64_t *objhash);
int peer_reapa_next(mpr *r, uint64_t *left, bool *yes);
int peer_encode_xreq(msgpack_sbuffer *sb, uint64_t id, const char *from, uint32_t partition,
		     uint64_t cursor, uint64_t max_bytes);
/* An XDATA frame: begin (code, next, done, the partition's keys and
 * bytes, the empty partitions' bitmap, and the number of pairs), pack
 * each pair with peer_hoff_pair, end with peer_hoff_end; its pairs decode
 * with peer_hoff_next, its bitmap is data/datalen. */
int peer_xdata_begin(msgpack_sbuffer *sb, msgpack_packer *pk, size_t *start, uint64_t id,
		     const char *from, uint32_t partition, uint32_t code, uint64_t next, bool done,
		     uint64_t keys, uint64_t bytes, const void *empty, size_t emptylen,
		     uint32_t npairs, uint32_t delay_us);
/* The next key hash of a decoded AAEWANT: 1, 0 at the end, DKV_EPROTO. */
int peer_aaewant_next(mpr *r, uint64_t *left, uint64_t *keyhash);
/* The next pair of a decoded HOFF (entries, nentries): 1, 0 at the end,
 * DKV_EPROTO.  Borrowed from the frame. */
int peer_hoff_next(mpr *r, uint64_t *left, const uint8_t **key, size_t *klen,
		   const uint8_t **obj, size_t *objlen);

/* SYNC and gossip messages are written in steps: the head, then exactly
 * nentries entries with peer_pack_entry, then (a SYNC begun with_epochs)
 * the chain with epochs_pack, then the end. */
int peer_sync_begin(msgpack_sbuffer *sb, msgpack_packer *pk, size_t *start, const char *from,
		    bool reply, uint32_t nentries, bool with_epochs);
int peer_sync_end(msgpack_sbuffer *sb, size_t start);
int gossip_begin(msgpack_packer *pk, uint32_t kind, const char *from_id, const char *from_addr,
		 uint64_t seq, const char *target, uint32_t nentries);
int peer_pack_entry(msgpack_packer *pk, const peer_entry *e);

#endif /* DKV_PEER_H */
