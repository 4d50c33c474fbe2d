"""assay's code-execution harness: the trusted half of a sandboxed run.

It reads one job as JSON on standard input: {"prompt", "solution", "test", "processes"}
(the RLIMIT_NPROC to set, or null).
The untrusted solution (the prompt plus the model's completion) runs in a child process; the
tests run here, in a process where no model-written code ever runs, and call the solution's
functions through a pipe: arguments go down and return values come back as plain data (None,
bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset, of exactly those
types), so an object with a forged __eq__, a patched builtin, an exit(0), an atexit hook or a
printed marker in the child cannot change what the tests see. The verdict is written once, as a
JSON line, to file descriptor 3, which the child never holds; this process is not dumpable, so
the child (same user) can neither ptrace it nor open its descriptors through /proc.
"""

import ast
import builtins
import json
import os
import resource
import signal
import sys

VERDICT_FD = 3
REPLY_LIMIT = 64 << 20


class CandidateRaised(BaseException):
    """The solution's function raised something other than a built-in exception (SystemExit,
    its own class): its kind and message. A BaseException, so `except Exception` in a test
    does not swallow it."""

    def __init__(self, kind, message):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class ProgramEnded(BaseException):
    """The solution's process ended (or broke the protocol) before answering."""


class Unsupported(Exception):
    """A value that is not plain data."""


def encode(value, depth=0):
    """Plain data to JSON-able form; exact types only (a subclass could forge comparisons)."""
    if depth > 200:
        raise Unsupported("nesting deeper than 200")
    t = type(value)
    if value is None or t is bool or t is int or t is str:
        return value
    if t is float:
        return {"f": repr(value)}
    if t is complex:
        return {"c": [repr(value.real), repr(value.imag)]}
    if t is bytes:
        return {"b": value.hex()}
    if t is list:
        return [encode(v, depth + 1) for v in value]
    if t is tuple:
        return {"t": [encode(v, depth + 1) for v in value]}
    if t is dict:
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if t is set:
        return {"s": [encode(v, depth + 1) for v in value]}
    if t is frozenset:
        return {"fs": [encode(v, depth + 1) for v in value]}
    raise Unsupported(f"a value of type {t.__module__}.{t.__qualname__}")


def decode(data):
    """The inverse of encode, refusing anything else."""
    if data is None or type(data) in (bool, int, str):
        return data
    if type(data) is list:
        return [decode(v) for v in data]
    if type(data) is not dict or len(data) != 1:
        raise Unsupported("malformed value")
    (tag, v), = data.items()
    if tag == "f" and type(v) is str:
        return float(v)
    if tag == "c" and type(v) is list and len(v) == 2:
        return complex(float(v[0]), float(v[1]))
    if tag == "b" and type(v) is str:
        return bytes.fromhex(v)
    if type(v) is not list:
        raise Unsupported("malformed value")
    if tag == "t":
        return tuple(decode(x) for x in v)
    if tag == "d":
        out = {}
        for pair in v:
            if type(pair) is not list or len(pair) != 2:
                raise Unsupported("malformed value")
            out[decode(pair[0])] = decode(pair[1])
        return out
    if tag == "s":
        return {decode(x) for x in v}
    if tag == "fs":
        return frozenset(decode(x) for x in v)
    raise Unsupported("malformed value")


def describe(exc):
    """An exception's kind and message, without trusting its methods."""
    kind = type(exc).__name__
    try:
        message = str(exc)
    except BaseException:
        message = ""
    if type(kind) is not str:
        kind = "Exception"
    return {"kind": kind[:200], "message": message[:500]}


def solution_process(solution, requests, replies):
    """The child: runs the untrusted solution, then answers calls until its input ends."""
    out = os.fdopen(replies, "w", encoding="utf-8")
    inp = os.fdopen(requests, "r", encoding="utf-8")

    def send(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(solution, "program.py", "exec"), namespace)
    except BaseException as e:  # SystemExit and KeyboardInterrupt too: not a pass
        send({"error": describe(e)})
        os._exit(0)
    names = sorted(
        k
        for k, v in namespace.items()
        if type(k) is str
        and not k.startswith("__")
        and callable(v)
        and not isinstance(v, type)
    )
    send({"ready": names})
    for line in inp:
        try:
            request = json.loads(line)
            function = namespace[request["name"]]
            args = decode(request["args"])
            kwargs = decode(request["kwargs"])
            result = function(*args, **kwargs)
            send({"value": encode(result)})
        except Unsupported as e:
            send({"error": {"kind": "UnsupportedValue", "message": f"the solution returned {e}"}})
        except BaseException as e:
            send({"error": describe(e)})
    os._exit(0)


def stub_names(prompt):
    """Functions the prompt leaves to the solution: the last one it defines, and any whose body
    is only a docstring, `pass`, `...` or imports."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return set()
    functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    stubs = {functions[-1].name} if functions else set()
    for node in functions:
        if all(
            isinstance(s, (ast.Pass, ast.Import, ast.ImportFrom))
            or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
            for s in node.body
        ):
            stubs.add(node.name)
    return stubs


def exit_reason(status):
    """What a waitpid status says about the solution's process."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        limit = {
            signal.SIGXCPU: "cpu",
            signal.SIGXFSZ: "file size",
            signal.SIGSEGV: "memory",
        }.get(sig, f"signal {sig}")
        return {"outcome": "killed", "limit": limit}
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    return {
        "outcome": "failed",
        "kind": "exit",
        "message": f"the program exited (status {code}) before the tests finished",
    }


def from_error(error):
    """A verdict for an exception the solution raised."""
    kind = error.get("kind", "Exception")
    message = error.get("message", "")
    if kind == "MemoryError":
        return {"outcome": "killed", "limit": "memory"}
    if kind == "BlockingIOError" and "Resource temporarily unavailable" in message:
        return {"outcome": "killed", "limit": "processes"}
    line = f"{kind}: {message}" if message else kind
    return {"outcome": "failed", "kind": kind, "message": line}


def undumpable():
    """PR_SET_DUMPABLE 0: same-user processes cannot ptrace this one or open /proc/PID/fd."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def main():
    os.write(VERDICT_FD, b"started\n")
    job = json.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    undumpable()
    if job["processes"] is not None:
        # Set here, inside the namespaces, so that it counts this program's processes only.
        n = int(job["processes"])
        resource.setrlimit(resource.RLIMIT_NPROC, (n, n))
    trusted = {"__name__": "__main__"}
    exec(compile(job["prompt"], "prompt.py", "exec"), trusted)
    test_code = compile(job["test"], "test.py", "exec", dont_inherit=True, optimize=0)
    stubs = stub_names(job["prompt"])

    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(VERDICT_FD)
            os.close(req_w)
            os.close(rep_r)
            solution_process(job["solution"], req_r, rep_w)
        finally:
            os._exit(0)
    os.close(req_r)
    os.close(rep_w)
    requests = os.fdopen(req_w, "w", encoding="utf-8")
    replies = os.fdopen(rep_r, "r", encoding="utf-8", errors="replace")

    # Set when the solution's process stopped answering, even if a test caught the exception.
    broken = []

    def broke(reason):
        """A ProgramEnded for `reason` (None: the process is gone), remembered in `broken`."""
        broken.append(reason)
        return ProgramEnded(reason)

    def receive():
        line = replies.readline(REPLY_LIMIT)
        if not line:
            raise broke(None)
        try:
            reply = json.loads(line)
        except ValueError:
            raise broke("a garbled answer") from None
        if type(reply) is not dict:
            raise broke("a garbled answer")
        return reply

    def proxy(name):
        def call(*args, **kwargs):
            try:
                requests.write(
                    json.dumps({"name": name, "args": encode(list(args)), "kwargs": encode(kwargs)})
                    + "\n"
                )
                requests.flush()
            except BrokenPipeError:
                raise broke(None) from None
            reply = receive()
            if "error" in reply and type(reply["error"]) is dict:
                kind = str(reply["error"].get("kind", "Exception"))
                message = str(reply["error"].get("message", ""))
                builtin = getattr(builtins, kind, None)
                if isinstance(builtin, type) and issubclass(builtin, Exception):
                    # A test may expect it (`except ValueError`), as it would in-process.
                    raise builtin(message)
                raise CandidateRaised(kind, message)
            if "value" not in reply:
                raise broke("a garbled answer")
            try:
                return decode(reply["value"])
            except (Unsupported, ValueError, TypeError, RecursionError):
                raise broke("a garbled answer") from None

        call.__name__ = name
        return call

    # The child's wait status, once reaped.
    reaped = []

    def reap(kill):
        if not reaped:
            if kill:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            reaped.append(os.waitpid(pid, 0)[1])
        return reaped[0]

    def finish(result):
        """Ends the child, writes the verdict once and exits."""
        reap(kill=True)
        os.write(VERDICT_FD, (json.dumps(result) + "\n").encode())
        os._exit(0)

    def gone(reason):
        """The verdict when the solution's process stopped answering: how it ended, or, when
        it answered garbage, a protocol failure."""
        if reason is None:
            return exit_reason(reap(kill=False))
        return {"outcome": "failed", "kind": "protocol", "message": f"the program sent {reason}"}

    try:
        hello = receive()
    except ProgramEnded as e:
        finish(gone(e.args[0]))
    if "error" in hello and type(hello["error"]) is dict:
        finish(from_error(hello["error"]))
    names = hello.get("ready")
    if type(names) is not list:
        finish(gone("a garbled answer"))
    for name in names:
        if type(name) is str and (name not in trusted or name in stubs):
            trusted[name] = proxy(name)
    try:
        exec(test_code, trusted)
    except ProgramEnded as e:
        finish(gone(e.args[0]))
    except CandidateRaised as e:
        finish(from_error({"kind": e.kind, "message": e.message}))
    except Unsupported as e:
        finish({"outcome": "failed", "kind": "UnsupportedValue", "message": f"the tests passed {e}"})
    except BaseException as e:
        finish(from_error(describe(e)))
    if broken:
        finish(gone(broken[0]))
    finish({"outcome": "passed"})

main()
