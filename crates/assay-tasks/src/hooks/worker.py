"""assay's worker for lm-eval `!function` hooks: one long-lived process in the user's Python,
fed one JSON request per line on stdin, answering one JSON line on the descriptor that was
stdout (hooks that print write to stderr instead).

Requests: {"op": "call", "hook": PATH, "args": [...]} calls the function; {"op":
"process_docs", "hook": PATH, "docs": [...]} passes the documents as a `datasets.Dataset` (or,
without `datasets`, a small stand-in with the same methods) and returns its rows, and whether the
hook drew from a global random generator; {"op":
"metric", ...} scores one answer as lm-eval calls a `metric: !function`; {"op": "filter", ...}
applies a `filter_fn` or a filter class's `apply(resps, docs)`. PATH is
"<task file folder>/<module>.<function>", resolved as lm-eval resolves `!function`: the module is
the file `<module>.py` beside the task file.

Before any hook runs, the worker seeds what lm-eval's `simple_evaluate` seeds, in its order:
Python's `random`, NumPy's and torch's global generators (where installed), with the seeds in
$ASSAY_HOOK_SEEDS (JSON: python, numpy, torch; null leaves one unseeded). A process_docs
request's "draws_before" says how many draws of Python's `random` lm-eval has made by then.
"""
import importlib.util
import json
import os
import random
import sys
import traceback

_protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
# Descriptor 1 becomes stderr: a hook's child process or C extension that writes there cannot
# corrupt the protocol, which keeps its own copy of the descriptor.
os.dup2(2, 1)
sys.stdout = sys.stderr
_modules = {}


def _die_with_parent():
    """On Linux, the kernel kills the worker when assay ends, even in the middle of a hook."""
    parent = int(os.environ.get("ASSAY_PARENT_PID", "0"))
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent and os.getppid() != parent:
        os._exit(0)  # assay ended before the signal was armed


def _reply_line(value):
    """The protocol line for a hook's result; a value JSON cannot carry is named."""
    try:
        return json.dumps({"ok": value}, allow_nan=False)
    except (TypeError, ValueError) as e:
        shown = repr(value)
        shown = shown if len(shown) <= 300 else shown[:300] + "..."
        raise ValueError(f"the hook returned {shown}, which JSON cannot carry ({e})") from None


def _function(path):
    directory, base = os.path.split(path)
    module_name, _, name = base.rpartition(".")
    key = (directory, module_name)
    module = _modules.get(key)
    if module is None:
        file = os.path.join(directory, module_name + ".py")
        if not os.path.isfile(file):
            raise FileNotFoundError(f"no module file {file} for `!function {module_name}.{name}`")
        if directory not in sys.path:
            sys.path.insert(0, directory)
        spec = importlib.util.spec_from_file_location(module_name, file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[key] = module
    if not hasattr(module, name):
        raise AttributeError(f"{module_name}.py has no function `{name}`")
    return getattr(module, name)


class Docs:
    """What `process_docs` hooks use of `datasets.Dataset`, for a Python without `datasets`."""

    def __init__(self, rows):
        self._rows = list(rows)

    def __len__(self):
        return len(self._rows)

    def __iter__(self):
        return iter(self._rows)

    def __getitem__(self, key):
        if isinstance(key, str):
            return [r[key] for r in self._rows]
        if isinstance(key, slice):
            return Docs(self._rows[key])
        return self._rows[key]

    @property
    def column_names(self):
        return list(self._rows[0]) if self._rows else []

    def map(self, function, batched=False, with_indices=False, remove_columns=None, **_):
        out = []
        if batched:
            columns = {k: [r.get(k) for r in self._rows] for k in self.column_names}
            args = (columns, list(range(len(self._rows)))) if with_indices else (columns,)
            result = function(*args)
            keys = list(result)
            n = len(result[keys[0]]) if keys else 0
            base = [] if remove_columns else None
            for i in range(n):
                row = {} if base is not None or n != len(self._rows) else dict(self._rows[i])
                row.update({k: result[k][i] for k in keys})
                out.append(row)
        else:
            for i, row in enumerate(self._rows):
                new = function(row, i) if with_indices else function(row)
                merged = dict(row)
                if new is not None:
                    merged.update(new)
                out.append(merged)
        if remove_columns:
            drop = [remove_columns] if isinstance(remove_columns, str) else list(remove_columns)
            out = [{k: v for k, v in r.items() if k not in drop} for r in out]
        return Docs(out)

    def filter(self, function, with_indices=False, **_):
        return Docs([r for i, r in enumerate(self._rows)
                     if (function(r, i) if with_indices else function(r))])

    def select(self, indices):
        return Docs([self._rows[i] for i in indices])

    def shuffle(self, seed=None, **_):
        import random
        rows = list(self._rows)
        random.Random(seed).shuffle(rows)
        return Docs(rows)

    def rename_column(self, old, new):
        return Docs([{(new if k == old else k): v for k, v in r.items()} for r in self._rows])

    def remove_columns(self, columns):
        drop = [columns] if isinstance(columns, str) else list(columns)
        return Docs([{k: v for k, v in r.items() if k not in drop} for r in self._rows])

    def add_column(self, name, values):
        return Docs([dict(r, **{name: v}) for r, v in zip(self._rows, values)])

    def to_list(self):
        return list(self._rows)


def _seed():
    seeds = json.loads(os.environ.get("ASSAY_HOOK_SEEDS") or "{}")
    if seeds.get("python") is not None:
        random.seed(seeds["python"])
    if seeds.get("numpy") is not None and importlib.util.find_spec("numpy"):
        import numpy
        numpy.random.seed(seeds["numpy"])
    if seeds.get("torch") is not None and importlib.util.find_spec("torch"):
        import torch
        torch.manual_seed(seeds["torch"])


_drawn = [0]


def _catch_up(draws):
    """Draws from Python's `random` until `draws` were made since seeding: lm-eval 0.4.13 draws
    eight times for every read of a task's `task_name` while it builds a group (a random id it
    throws away), and a hook that shuffles with `random` sees those draws."""
    while _drawn[0] < draws:
        random.random()
        _drawn[0] += 1


def _generator_states():
    """The states of the global random generators, comparable with ==."""
    states = [random.getstate()]
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        kind, keys, pos, has_gauss, cached = numpy.random.get_state()
        states.append((kind, keys.tobytes(), pos, has_gauss, cached))
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_rng_state"):
        states.append(bytes(torch.get_rng_state().tolist()))
    return states


def _dataset(rows):
    try:
        import datasets
    except ImportError:
        return Docs(rows)
    return datasets.Dataset.from_list(rows)


def _plain(value):
    """JSON-compatible values: tuples as lists, NumPy scalars and arrays as Python values."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if hasattr(value, "item"):
        return _plain(value.item())
    raise TypeError(f"a hook returned a {type(value).__name__}, which assay cannot use")


def _metric(fn, gold, answer, kwargs):
    """As lm-eval's ConfigurableTask.process_results calls a `!function` metric."""
    def one(reference):
        try:
            return fn(references=[reference], predictions=[answer], **kwargs)
        except TypeError:
            return fn([reference, answer])
    if isinstance(gold, list):
        scores = []
        for reference in gold:
            score = one(reference)
            scores.append(score[fn.__name__] if isinstance(score, dict) else score)
        return 1.0 if any(scores) else 0.0
    return one(gold)


_filters = {}


def _filter(request, fn):
    if not request["class"]:
        return fn(request["resps"], request["docs"])
    key = (request["hook"], json.dumps(request["kwargs"], sort_keys=True))
    instance = _filters.get(key)
    if instance is None:
        instance = _filters[key] = fn(**request["kwargs"])
    return instance.apply(request["resps"], request["docs"])


def _answer(request):
    fn = _function(request["hook"])
    if request["op"] == "metric":
        return _plain(_metric(fn, request["gold"], request["answer"], request["kwargs"]))
    if request["op"] == "filter":
        return _plain([list(r) if not isinstance(r, str) else r
                       for r in _filter(request, fn)])
    if request["op"] == "process_docs":
        _catch_up(request.get("draws_before", 0))
        docs = _dataset(request["docs"])
        before = _generator_states()
        result = fn(docs)
        rows = result.to_list() if hasattr(result, "to_list") else list(result)
        return {"rows": _plain(rows), "drew": _generator_states() != before}
    return _plain(fn(*request["args"]))


_die_with_parent()
_seed()
for line in sys.stdin:
    try:
        text = _reply_line(_answer(json.loads(line)))
    except BaseException as e:  # a hook's SystemExit too: the worker answers and lives on
        text = json.dumps({"error": type(e).__name__, "message": str(e),
                           "traceback": traceback.format_exc(limit=6)})
    _protocol.write(text + "\n")
    _protocol.flush()
