"""daca's warm parent for Python apps (see src/warm/mod.rs).

Two modes, both started with the interpreter the app's own command would use:

  parent.py run TARGET REPORT ARG...     a cold start: runs the app's server in this process
                                         and reports the modules it imported from outside
                                         the app's folder into REPORT (one name per line).
  parent.py serve TARGET REPORT SOCKET   imports the modules REPORT lists, then serves fork
                                         requests from daca on SOCKET: each child becomes the
                                         app's process with a fresh import of the user's code.

TARGET is JSON: {"kind": "module" | "path" | "script", "name": ..., "app_dir": ...}.
Messages on SOCKET are JSON lines. daca -> parent: {"op": "fork", "argv", "cwd"}.
parent -> daca: {"ready": n} | {"refused": why} | {"forked": pid} | {"exit": pid, "code", "signal"}.
The parent exits when daca closes SOCKET (daca stopped, or was killed), so it never outlives it.
"""

import json
import os
import runpy
import selectors
import shutil
import signal
import socket
import sys
import threading
import time
import traceback


def resolve(target):
    """What to run and sys.path[0], as `python -m`, `python file.py` or a console script has."""
    kind, name = target["kind"], target["name"]
    if kind == "module":
        return kind, name, os.getcwd()
    if kind == "path":
        path = os.path.abspath(name)
        return kind, path, os.path.dirname(path)
    found = shutil.which(name)
    if found is None:
        raise LookupError(f"`{name}` is not on PATH")
    with open(found, "rb") as script:
        first = script.readline()
    if not first.startswith(b"#!") or b"python" not in first:
        raise LookupError(f"`{found}` is not a Python script")
    return "path", found, os.path.dirname(found)


def outside(module, app_dir):
    """Whether a loaded module is a library (installed, or from outside the app's folder)
    rather than the user's own code."""
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None)
    if not origin or not os.path.isabs(origin):
        return False
    path = os.path.realpath(origin)
    # The app's virtualenv usually lives in its folder: what is installed is a library.
    installed = f"{os.sep}site-packages{os.sep}" in path or f"{os.sep}dist-packages{os.sep}" in path
    return installed or not path.startswith(app_dir + os.sep)


def report(path, app_dir):
    """Writes the names of the libraries loaded so far whenever their number changes
    (checked every 100 ms for a minute, then every 2 s), each time atomically."""
    started, last = time.monotonic(), 0
    while True:
        time.sleep(0.1 if time.monotonic() - started < 60 else 2)
        if len(sys.modules) == last:
            continue
        last = len(sys.modules)
        # In the order the app imported them (sys.modules keeps it): importing in another
        # order can change what a module finds (asyncio picks its C or Python tasks so).
        names = [
            name
            for name, module in list(sys.modules.items())
            if name != "__main__" and outside(module, app_dir)
        ]
        partial = f"{path}.{os.getpid()}"
        with open(partial, "w") as out:
            out.write("\n".join(names) + "\n")
        os.replace(partial, path)


def run(target, resolved, report_path, argv0_args):
    """Runs the app's server here, as its command would, reporting what it imports."""
    kind, where, path0 = resolved
    sys.path[0] = path0
    app_dir = os.path.realpath(target["app_dir"])
    threading.Thread(target=report, args=(report_path, app_dir), daemon=True).start()
    if kind == "module":
        sys.argv = [where, *argv0_args]
        runpy.run_module(where, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [where, *argv0_args]
        runpy.run_path(where, run_name="__main__")


def send(sock, message):
    sock.sendall((json.dumps(message) + "\n").encode())


def preload(report_path):
    """Imports every module the last start reported; the first failure refuses warm mode."""
    import importlib

    with open(report_path) as names:
        wanted = [line.strip() for line in names if line.strip()]
    for name in wanted:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except BaseException as err:  # noqa: BLE001 - any failure means: do not trust it
            return len(wanted), f"`{name}` failed to import ({type(err).__name__}: {err})"
    threads = len(os.listdir("/proc/self/task"))
    if threads > 1:
        return len(wanted), f"{threads - 1} threads were running after the imports"
    return len(wanted), None


def fresh_bytecode(target, report_path):
    """A pyc is trusted when its source's mtime (whole seconds) and size match, so a save
    within a second of the last one, of the same size, would run the old code: forks keep the
    bytecode in a folder of daca's, from which the app's own part is removed before each one
    (the libraries' stays, compiled once)."""
    name = os.path.basename(report_path).rsplit(".", 1)[0]
    cache = os.path.join(os.path.dirname(report_path), f"pyc-{name}")
    sys.pycache_prefix = cache
    for app_dir in {target["app_dir"], os.path.realpath(target["app_dir"])}:
        shutil.rmtree(cache + os.path.abspath(app_dir), ignore_errors=True)


def child(sock, request, target, resolved, environ, report_path):
    """In the forked child: become the app's process, then run its server."""
    try:
        os.setpgid(0, 0)
        sock.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # The environment the parent started with (the app's, as `uv run` made it): daca
        # forks only for a launch whose environment and folder are the parent's.
        if request.get("cwd"):
            os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(environ)
        fresh_bytecode(target, report_path)
        code = 0
        run(target, resolved, report_path, request["argv"])
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if not isinstance(done.code, (int, type(None))):
            print(done.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - the app's own crash, shown as Python shows it
        traceback.print_exc()
        code = 1
    try:
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def reap(sock):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        send(sock, {"exit": pid, "code": code, "signal": sig})


def serve(target, report_path, socket_path):
    environ = dict(os.environ)
    resolved = resolve(target)
    sys.path[0] = resolved[2]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(socket_path)
    started = time.monotonic()
    count, refused = preload(report_path)
    if refused:
        send(sock, {"refused": refused})
        return
    send(sock, {"ready": count, "ms": int((time.monotonic() - started) * 1000)})
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    events = selectors.DefaultSelector()
    events.register(sock, selectors.EVENT_READ)
    events.register(wake_r, selectors.EVENT_READ)
    buffer = b""
    while True:
        for key, _ in events.select():
            if key.fileobj == wake_r:
                os.read(wake_r, 512)
                reap(sock)
                continue
            data = sock.recv(65536)
            if not data:
                return  # daca is gone
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    os.close(wake_r)
                    os.close(wake_w)
                    events.close()
                    child(sock, request, target, resolved, environ, report_path)
                try:
                    os.setpgid(pid, pid)  # as the child does: whichever runs first
                except OSError:
                    pass
                send(sock, {"forked": pid})


def main():
    mode, target, report_path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    if mode == "run":
        args = sys.argv[4:]
        del sys.argv[1:]
        run(target, resolve(target), report_path, args)
    elif mode == "serve":
        serve(target, report_path, sys.argv[4])
    else:
        sys.exit(f"daca warm parent: unknown mode {mode!r}")


if __name__ == "__main__":
    main()
