/* dkv_thread.h -- what the process asks of its own threads.
 *
 * A node's threads are its event loop, its pool's sync and work threads
 * (net.h) and, at start, the store openers (vnode.c).  The background ones
 * run at a lower CPU priority than the loop, so that on a shared machine
 * (a test cluster on one host, a node beside other services) they take the
 * cores the event loops leave.  Linux keeps a nice value per thread; where
 * it does not, this changes nothing. */
#ifndef DKV_THREAD_H
#define DKV_THREAD_H

/* Raise the calling thread's nice value by incr (> 0) above its own (a new
 * thread's is the process's), at most to 19.  Returns the value it then
 * has; the old one when it could not change it. */
int dkv_thread_nice(int incr);

#endif
