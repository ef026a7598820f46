#!/usr/bin/env python3
"""tests/integration/resp_checks.py -- the Redis protocol face, checked with
the python3-redis library (RESP2) and raw sockets, against real nodes.

usage: resp_checks.py PORT1 PORT2 PORT_NEWEST PORT_SMALL

PORT1, PORT2: two nodes of one cluster (resp_siblings = error);
PORT_NEWEST: a node of it with resp_siblings = newest;
PORT_SMALL: a node of it with resp_max_connections = 4.
Prints one line per check: "PASS what" or "FAIL what: why"; the shell
test turns them into TAP.
"""
import os
import socket
import sys
import threading
import time

import redis

P1, P2, PN, PS = (int(a) for a in sys.argv[1:5])
failed = 0


def report(ok, what, why=""):
    global failed
    if ok:
        print("PASS " + what, flush=True)
    else:
        failed += 1
        print("FAIL %s: %s" % (what, why), flush=True)


def check(what, fn):
    try:
        r = fn()
        report(r is None or r is True, what, "" if r in (None, True) else repr(r))
    except Exception as e:  # noqa: BLE001 -- any exception fails the check
        report(False, what, "%s: %s" % (type(e).__name__, e))


def raw(port, data, want_close=False, timeout=5.0):
    """Send data, read until the peer closes (want_close) or is quiet."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    got = b""
    end = time.time() + timeout
    s.settimeout(0.3 if not want_close else timeout)
    while time.time() < end:
        try:
            b = s.recv(65536)
        except socket.timeout:
            if not want_close and got:
                break
            continue
        if not b:
            s.close()
            return got, True
        got += b
    s.close()
    return got, False


r1 = redis.Redis(port=P1)
r2 = redis.Redis(port=P2)
rn = redis.Redis(port=PN)

# --- the data --------------------------------------------------------------
binkey = b"k\x00\r\n\xff"
binval = bytes(range(256)) * 4


def binary_round_trip():
    assert r1.set(binkey, binval) is True
    got = r2.get(binkey)
    assert got == binval, got[:20] if got else got


check("SET and GET of binary bytes through two nodes (RESP2, redis-py)", binary_round_trip)
check("GET of a missing key is None", lambda: r1.get(b"nope-%d" % time.time_ns()) is None)


def mset_mget():
    assert r1.mset({"m1": "a", "m2": "b", "m3": ""}) is True
    assert r2.mget(["m1", "m2", "m3", "m-missing"]) == [b"a", b"b", b"", None]


check("MSET then MGET (an empty value, a missing key)", mset_mget)
check("EXISTS counts keys, a key named twice twice",
      lambda: r1.exists("m1", "m2", "m1", "m-missing") == 3)


def del_counts():
    assert r1.delete("m1", "m2", "m1", "m-missing") == 2
    assert r2.get("m1") is None and r2.exists("m2") == 0


check("DEL counts the keys it removed (once each) and they are gone", del_counts)


def set_get_option():
    r1.set("sg", "old")
    assert r1.set("sg", "new", get=True) == b"old"
    assert r2.get("sg") == b"new"
    assert r1.set("sg-missing-%d" % time.time_ns(), "x", get=True) is None


check("SET ... GET answers the old value and writes the new", set_get_option)


def pipeline_order():
    p = r1.pipeline(transaction=False)
    for i in range(50):
        p.set("pipe", str(i))
        p.get("pipe")
    out = p.execute()
    for i in range(50):
        assert out[2 * i] is True, out[2 * i]
        assert out[2 * i + 1] == str(i).encode(), (i, out[2 * i + 1])


check("a pipeline of 100 SET/GET on one key: answers in order, each GET sees its SET",
      pipeline_order)


def pipeline_many_keys():
    p = r1.pipeline(transaction=False)
    for i in range(300):
        p.set("pk%d" % i, "v%d" % i)
    assert all(x is True for x in p.execute())
    p = r2.pipeline(transaction=False)
    for i in range(300):
        p.get("pk%d" % i)
    out = p.execute()
    assert out == [b"v%d" % i for i in range(300)], out[:5]


check("a pipeline of 300 SETs then 300 GETs through another node", pipeline_many_keys)


def sets_never_pile_up():
    threads = []

    def hammer(port):
        c = redis.Redis(port=port)
        for i in range(100):
            c.set("hot", "v%d" % i)

    for p in (P1, P2, P1, P2):
        t = threading.Thread(target=hammer, args=(p,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    # writes truly concurrent through two coordinators may leave
    # siblings; one more SET, after every one of them was answered,
    # supersedes them all (W + R > N: its read sees each of them)
    assert r2.set("hot", "final") is True
    res = r1.execute_command("DYNKV.GET", "hot")
    d = dict(zip(res[0::2], res[1::2]))
    assert d[b"values"] == [b"final"], d


check("400 SETs from 4 clients through 2 nodes, then one more: exactly that value",
      sets_never_pile_up)


def one_client_one_value():
    c = redis.Redis(port=P1)
    for i in range(200):
        c.set("hot1", "w%d" % i)
    res = c.execute_command("DYNKV.GET", "hot1")
    d = dict(zip(res[0::2], res[1::2]))
    assert d[b"values"] == [b"w199"], d


check("200 SETs from one client leave exactly one value, the last", one_client_one_value)

# --- siblings --------------------------------------------------------------


def make_siblings(key):
    r1.execute_command("DYNKV.PUT", key, "first", "")
    time.sleep(0.01)
    r1.execute_command("DYNKV.PUT", key, "second", "")


def siblings_error():
    make_siblings("sib")
    try:
        r2.get("sib")
    except redis.ResponseError as e:
        assert str(e).startswith("SIBLINGS") and "DYNKV.GET" in str(e), str(e)
        return True
    return "no error"


check("two blind DYNKV.PUTs make siblings; a plain GET names DYNKV.GET", siblings_error)


def dget_and_resolve():
    res = r2.execute_command("DYNKV.GET", "sib")
    d = dict(zip(res[0::2], res[1::2]))
    assert sorted(d[b"values"]) == [b"first", b"second"], d
    assert len(d[b"timestamps"]) == 2 and all(t > 1.6e12 for t in d[b"timestamps"]), d
    out = r2.execute_command("DYNKV.PUT", "sib", "merged", d[b"context"])
    o = dict(zip(out[0::2], out[1::2]))
    assert o[b"siblings"] == 1, o
    assert r1.get("sib") == b"merged"


check("DYNKV.GET returns both with the context; DYNKV.PUT with it resolves them",
      dget_and_resolve)


def newest():
    make_siblings("sib2")
    assert rn.get("sib2") == b"second", rn.get("sib2")
    assert rn.mget(["sib2", "nope"]) == [b"second", None]


check("resp_siblings = newest: GET and MGET answer the later write", newest)


def mget_sibling_error():
    out = r1.execute_command("MGET", "sib2", "pk1")
    assert isinstance(out[0], redis.ResponseError) and out[1] == b"v1", out


check("MGET: a key with siblings is an error element, the others values",
      mget_sibling_error)


def dyn_del():
    res = r1.execute_command("DYNKV.GET", "pk2")
    d = dict(zip(res[0::2], res[1::2]))
    r1.execute_command("DYNKV.DEL", "pk2", d[b"context"])
    assert r2.get("pk2") is None


check("DYNKV.DEL with a context deletes", dyn_del)

# --- the connection --------------------------------------------------------


def quorum():
    c = redis.Redis(port=P1)
    assert c.execute_command("DYNKV.QUORUM", "all", "all") == b"OK"
    assert c.set("q", "1") is True and c.get("q") == b"1"
    assert c.execute_command("DYNKV.QUORUM", "1", "quorum", "one", "default") == b"OK"
    try:
        c.execute_command("DYNKV.QUORUM", "17", "1")
    except redis.ResponseError as e:
        assert "is not 1 to 16" in str(e), str(e)
        return True
    return "17 accepted"


check("DYNKV.QUORUM sets R W [PR PW]; 17 is refused", quorum)


def names():
    c = redis.Redis(port=P1)
    assert c.client_getname() is None
    assert c.client_setname("svc-1") is True
    assert c.client_getname() == "svc-1" or c.client_getname() == b"svc-1"
    assert isinstance(c.client_id(), int)


check("CLIENT SETNAME, GETNAME, ID", names)
check("PING, ECHO", lambda: r1.ping() is True and r1.echo("hi\x00") == b"hi\x00")
check("INFO has redis_version and dynkv's section",
      lambda: r1.info()["redis_version"] == "7.0.0" and "n_val" in r1.info("dynkv"))
check("CONFIG GET save, appendonly (redis-benchmark's start)",
      lambda: r1.config_get("save") == {"save": ""} and
      r1.config_get("appendonly") == {"appendonly": "no"})


def unknown():
    try:
        r1.execute_command("FLUSHALL")
    except redis.ResponseError as e:
        assert str(e) == "unknown command 'FLUSHALL', with args beginning with: ", str(e)
        return True
    return "no error"


check("an unknown command: Redis's own text", unknown)


def arity():
    try:
        r1.execute_command("GET")
    except redis.ResponseError as e:
        assert str(e) == "wrong number of arguments for 'get' command", str(e)
        return True
    return "no error"


check("a wrong number of arguments: Redis's own text", arity)


def select():
    assert r1.execute_command("SELECT", "0") in (True, b"OK")
    try:
        r1.execute_command("SELECT", "1")
    except redis.ResponseError as e:
        assert "out of range" in str(e)
        return True
    return "select 1 accepted"


check("SELECT 0 is fine, SELECT 1 out of range", select)


def auth():
    try:
        r1.execute_command("AUTH", "secret")
    except redis.ResponseError as e:
        assert "no authentication yet" in str(e), str(e)
        return True
    return "accepted"


check("AUTH says dynkv has no authentication yet", auth)


def set_nx_bad():
    cases = ((("x", "1", "NX"), "DYNKV.PUT"), (("x", "1", "BOGUS"), "syntax error"),
             (("x", "1", "EX", "0"), "invalid expire time in 'set' command"),
             (("x", "1", "EX", "ten"), "value is not an integer or out of range"),
             (("x", "1", "EX", "1", "PX", "1"), "syntax error"))
    for args, want in cases:
        try:
            r1.execute_command("SET", *args)
        except redis.ResponseError as e:
            assert want in str(e), (args, str(e))
            continue
        return "%r accepted" % (args,)


check("SET NX, a bad option, a bad or doubled expiry: clear errors", set_nx_bad)

# --- expiry ----------------------------------------------------------------


def expiry_set_ex():
    assert r1.set("ex1", "v", ex=100) is True
    assert 99 <= r2.ttl("ex1") <= 100, r2.ttl("ex1")
    assert 99000 <= r2.pttl("ex1") <= 100000, r2.pttl("ex1")
    assert r1.set("ex2", "v", px=300) is True
    assert r2.get("ex2") == b"v"
    time.sleep(0.5)
    assert r2.get("ex2") is None and r1.exists("ex2") == 0 and r1.ttl("ex2") == -2
    assert r1.mget(["ex1", "ex2"]) == [b"v", None]


check("SET EX/PX: TTL and PTTL through another node; gone once it passes", expiry_set_ex)


def expiry_commands():
    r1.set("ex3", "v")
    assert r2.ttl("ex3") == -1 and r2.ttl("ex-none") == -2
    assert r1.expire("ex3", 50) is True and 49 <= r2.ttl("ex3") <= 50
    assert r1.pexpire("ex3", 80000) is True and 79 <= r2.ttl("ex3") <= 80
    assert r1.expire("ex3", 10, nx=True) is False, "NX with an expiry"
    assert r1.expire("ex3", 90, gt=True) is True and 89 <= r2.ttl("ex3") <= 90
    assert r1.expire("ex3", 95, lt=True) is False
    assert r1.persist("ex3") is True and r2.ttl("ex3") == -1 and r2.get("ex3") == b"v"
    assert r1.persist("ex3") is False
    assert r1.expire("ex-none", 10) is False
    at = int(time.time()) + 60
    assert r1.expireat("ex3", at) is True and 58 <= r2.ttl("ex3") <= 60
    assert r1.set("ex3", "w", keepttl=True) is True and 58 <= r2.ttl("ex3") <= 60
    assert r2.get("ex3") == b"w"
    assert r1.set("ex3", "x") is True and r2.ttl("ex3") == -1, "a SET takes the expiry off"
    assert r1.expire("ex3", -1) is True and r2.get("ex3") is None, "a past expiry deletes"


check("EXPIRE, PEXPIRE, EXPIREAT with NX/GT/LT, PERSIST, KEEPTTL, SET clearing it",
      expiry_commands)


def expiry_dyn():
    r1.set("ex4", "v", ex=30)
    res = r2.execute_command("DYNKV.GET", "ex4")
    d = dict(zip(res[0::2], res[1::2]))
    now = time.time() * 1000
    assert len(d[b"expires"]) == 1 and 28000 < d[b"expires"][0] - now <= 30500, d


check("DYNKV.GET shows the expiry (ms since 1970)", expiry_dyn)


def too_big():
    c = redis.Redis(port=P1)
    try:
        c.set("big", b"x" * (2 << 20))
    except redis.ResponseError as e:
        assert "max_value_size" in str(e), str(e)
        assert c.ping() is True   # the connection goes on
        return True
    return "accepted"


check("a 2 MiB value: an error naming max_value_size, the connection goes on", too_big)


def hello3():
    got, _ = raw(P1, b"HELLO 3\r\nGET nope-hello\r\nMGET pk3 nope\r\n")
    assert got.startswith(b"%8\r\n$6\r\nserver\r\n"), got[:40]
    assert b"$5\r\nproto\r\n:3\r\n" in got, got
    assert got.endswith(b"_\r\n*2\r\n$2\r\nv3\r\n_\r\n"), got[-40:]


check("HELLO 3: a map, then RESP3 nulls", hello3)


def hello_bad():
    got, _ = raw(P1, b"HELLO 4\r\n")
    assert got == b"-NOPROTO unsupported protocol version\r\n", got


check("HELLO 4: NOPROTO", hello_bad)


def quit_closes():
    got, closed = raw(P1, b"PING\r\nQUIT\r\nPING\r\n", want_close=True)
    assert got == b"+PONG\r\n+OK\r\n" and closed, (got, closed)


check("QUIT: +OK, then the connection closes (nothing after is served)", quit_closes)


def quit_after_pending():
    got, closed = raw(P1, b"GET pk7\r\nQUIT\r\nSET afterquit yes\r\n", want_close=True)
    assert got == b"$2\r\nv7\r\n+OK\r\n" and closed, (got, closed)
    assert r2.get("afterquit") is None


check("QUIT behind a waiting GET: the GET answered, nothing after QUIT run",
      quit_after_pending)


def inline_quotes():
    got, _ = raw(P1, b"SET \"in line\" \"a\\x41\\n\"\r\nGET 'in line'\r\n")
    assert got == b"+OK\r\n$3\r\naA\n\r\n", got


check("inline commands with quotes and escapes", inline_quotes)

# --- bad input ---------------------------------------------------------------


def proto_err(data, want):
    got, closed = raw(P1, data, want_close=True)
    assert got == want and closed, (got, closed)


check("garbage multibulk count: Redis's error, closed",
      lambda: proto_err(b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"))
check("an oversized bulk length: refused before its bytes, closed",
      lambda: proto_err(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$999999999999\r\n",
                        b"-ERR Protocol error: invalid bulk length\r\n"))
check("a missing '$': Redis's error, closed",
      lambda: proto_err(b"*1\r\n:3\r\n", b"-ERR Protocol error: expected '$', got ':'\r\n"))
check("an inline line over 64 KiB: too big inline request, closed",
      lambda: proto_err(b"A" * (70 << 10),
                        b"-ERR Protocol error: too big inline request\r\n"))
check("binary garbage on one line: an unknown command, the connection goes on",
      lambda: raw(P1, b"\x01\x02\x03\r\nPING\r\n")[0].endswith(b"+PONG\r\n"))


def truncated_then_gone():
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", P1))
        s.sendall(b"*3\r\n$3\r\nSET\r\n$2\r\nab\r\n$100\r\nxyz")
        s.close()
        s = socket.create_connection(("127.0.0.1", P1))
        s.sendall(b"GET pk5\r\n" * 200)   # and gone before the answers
        s.close()
    assert r2.get("pk5") == b"v5" and r1.ping() is True


check("clients that die mid-request or before their answers: the node goes on",
      truncated_then_gone)


def slow_client():
    s = socket.create_connection(("127.0.0.1", P1))
    req = b"*2\r\n$4\r\nECHO\r\n$5\r\nslow!\r\n"
    worst = 0.0
    for b in req:
        s.sendall(bytes([b]))
        t = time.time()
        assert r1.ping() is True
        worst = max(worst, time.time() - t)
        time.sleep(0.06)   # 28 bytes: 1.7 s, longer than any bound below
    s.settimeout(5)
    got = s.recv(100)
    s.close()
    assert got == b"$5\r\nslow!\r\n", got
    # (a loaded machine, or ASan, can stall any one request a little)
    assert worst < (1.5 if os.environ.get("DKV_SANITIZERS") else 1.0), worst


check("a client sending a byte at a time is served; others meanwhile at once", slow_client)


def max_clients():
    held = [socket.create_connection(("127.0.0.1", PS)) for _ in range(4)]
    for s in held:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
    got, closed = raw(PS, b"PING\r\n", want_close=True)
    for s in held:
        s.close()
    assert got == b"-ERR max number of clients reached\r\n" and closed, (got, closed)
    time.sleep(0.2)
    assert raw(PS, b"PING\r\n")[0] == b"+PONG\r\n"


check("resp_max_connections: one more is told so and closed; room again after",
      max_clients)

sys.exit(1 if failed else 0)
