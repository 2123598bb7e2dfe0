"""nutpie models whose compiled callbacks come from an on-disk cache (issue 17: compilation paid
once per machine).

nutpie's numba backend (``nutpie.compile_pymc_model``) hands the sampler two C callbacks, the
log-density with its gradient and the "expand" function (deterministics for the trace). They
wrap PyTensor's compiled graph functions, and their closures hold those dispatchers and a record
type whose field names are fresh ``uuid4`` keys: numba can never reuse them from its disk cache,
and since numba links and re-optimises every library a function calls, each process re-lowers
the whole model through LLVM (measured: 12 + 4 s of the 20-symbol returns model's 19-25 s
compile, docs/nightly_scale.md). PyTensor's own numba cache does hold the graph functions.

Here the callbacks call the graph functions **by address**: :func:`_call_at` calls a compiled
function's native entry point (numba's own calling convention, ``fndesc.llvm_func_name``) at an
address read from the callback's user data. The callbacks' code then depends only on the *types*
of the graph functions' inputs and outputs (the model's structure: number and rank of the data
arrays, dtypes), not on a model's values or identity. It is generated into a module file named
by the hash of its source (:func:`callback_source`), compiled with ``cache=True`` and reused by
every process, and every model, of that structure. What changes per model or per process is only
data: the two function addresses, the data arrays' pointers and shapes (:class:`CachedModel`'s
flat ``user_data``, rebuilt by ``with_data``).

Why this is safe: a cached callback never holds an address or a value; it reads both at each
call from the user data, filled in this process from this process's compiled functions. Two
models with the same structure share callback code and nothing else (tested: a second process
serves another model of the same structure with that model's own log-density; and the draws
equal nutpie's own compile to the bit).

What stays per process: building the PyTensor graphs and their rewrites (about 4-6 s for the
returns model) and loading the graph functions from PyTensor's cache. Where the generated code
cannot express a model's types (inputs other than C arrays of rank <= 4, outputs other than a
0-d and a 1-d C array), or the cache directory cannot be written, :func:`compile_model` falls
back to ``nutpie.compile_pymc_model`` and logs why.

The cache directory is ``$BAYES_MEM_CACHE_DIR/nutpie_callbacks`` (default
``~/.cache/bayes_mem``); numba keeps its compiled code next to each generated file (in
``__pycache__``), keyed on the file, the numba version and the CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_HEADER = 4  # user data: logp address, expand address, n_dim, n_expanded; then the data slots
_MAX_NDIM = 4


def _types():
    from numba.core import types

    vec = types.Array(types.float64, 1, "C")
    # the log-density and its gradient; the expanded point (nutpie's join_expanded=True)
    return vec, types.Tuple((types.Array(types.float64, 0, "C"), vec)), types.Tuple((vec,))


_VEC, _LOGP_RET, _EXPAND_RET = _types()


def _source_version() -> str:
    with open(__file__, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:16]


_SOURCE_VERSION = _source_version()


def cache_dir() -> Path:
    """Where the generated callback modules (and numba's cache of them) live.

    Examples
    --------
    >>> cache_dir().name
    'nutpie_callbacks'
    """
    root = os.environ.get("BAYES_MEM_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "bayes_mem"
    )
    return Path(root) / "nutpie_callbacks"


def _compiled_graph_function(fn_pt: Any, n_dim: int, arrays: list[np.ndarray], ret: Any):
    """The numba dispatcher of a PyTensor graph function, compiled (or loaded
    from PyTensor's cache) for the types the callbacks pass: the flat point and the data arrays
    as writable C arrays (what ``numba.carray`` gives). Raises NotImplementedError where its
    return type is not ``ret``."""
    from numba import from_dtype
    from numba.core import types

    jit_fn = fn_pt.vm.jit_fn
    jit_fn(np.zeros(n_dim), *(a.copy() for a in arrays))
    (sig,) = jit_fn.nopython_signatures  # a fresh dispatcher, called once
    (inputs,) = sig.args  # PyTensor's graph functions take ``*inputs``: one tuple
    want = (_VEC, *(types.Array(from_dtype(a.dtype), a.ndim, "C") for a in arrays))
    if tuple(getattr(inputs, "types", ())) != want:
        raise NotImplementedError(f"graph function inputs {inputs}, expected {want}")
    if sig.return_type != ret:
        raise NotImplementedError(f"graph function returns {sig.return_type}, expected {ret}")
    return jit_fn


def callback_source(slots_logp: list[int], slots_expand: list[int], ranks: list[int],
                    dtypes: list[str]) -> str:  # fmt: skip
    """Source of the module with the two cached C callbacks for one model structure.

    ``slots_*``: which data slot feeds each input of the log-density's (expand's) graph
    function after the first (the flat point); ``ranks`` / ``dtypes``: each slot's rank and
    numpy dtype name. The text carries a hash of this file, so an edit here is never served
    from numba's cache of an older callback.

    Examples
    --------
    One data slot (a float vector) read by both functions:

    >>> src = callback_source([0], [0], [1], ["float64"])
    >>> "cache=True" in src and "def logp(" in src and "def expand(" in src
    True
    >>> print(src.splitlines()[-7])
        a0 = numba.carray(_void_pointer(u[4]), (u[5],), np.float64)
    """
    lines = [
        '"""Generated by bayes_mem.offline.compile_cache: nutpie callbacks for one model',
        'structure. Do not edit; delete the directory to clear the cache."""',
        f"# generator version {_SOURCE_VERSION}",
        "import numba",
        "import numpy as np",
        "from numba.core import types",
        "from bayes_mem.offline.compile_cache import (",
        "    _EXPAND_RET, _LOGP_RET, _call_at, _int64_pointer, _void_pointer,",
        ")",
        "",
        "LOGP_SIG = types.int64(types.uint64, types.CPointer(types.double),"
        " types.CPointer(types.double), types.CPointer(types.double), types.voidptr)",
        "EXPAND_SIG = types.int64(types.uint64, types.uint64, types.CPointer(types.double),"
        " types.CPointer(types.double), types.voidptr)",
        "",
    ]

    def slot_arrays(slots: list[int]) -> list[str]:
        out = []
        for k in slots:
            base = _HEADER + k * (1 + _MAX_NDIM)
            shape = ", ".join(f"u[{base + 1 + d}]" for d in range(ranks[k]))
            shape = f"({shape},)" if ranks[k] else "()"
            out.append(
                f"    a{k} = numba.carray(_void_pointer(u[{base}]), {shape}, np.{dtypes[k]})"
            )
        return out

    logp_args = ", ".join(["x"] + [f"a{k}" for k in slots_logp])
    expand_args = ", ".join(["x"] + [f"a{k}" for k in slots_expand])
    n_words = _HEADER + len(ranks) * (1 + _MAX_NDIM)
    lines += [
        "@numba.cfunc(LOGP_SIG, cache=True)",
        "def logp(dim, x_, out_, logp_, user_data_):",
        f"    u = numba.carray(_int64_pointer(user_data_), ({n_words},), np.int64)",
        "    if dim != u[2]:",
        "        return -1",
        "    x = numba.carray(x_, (dim,))",
        *slot_arrays(slots_logp),
        f"    ok, (value, grad) = _call_at(u[0], _LOGP_RET, ({logp_args},))",
        "    if not ok:  # the graph function raised",
        "        return 1",
        "    out = numba.carray(out_, (dim,))",
        "    out[:] = grad",
        "    logp_[0] = value[()]",
        "    if not np.all(np.isfinite(out)):",
        "        return 3",
        "    if not np.isfinite(logp_[0]):",
        "        return 4",
        "    return 0",
        "",
        "",
        "@numba.cfunc(EXPAND_SIG, cache=True)",
        "def expand(dim, expanded, x_, out_, user_data_):",
        f"    u = numba.carray(_int64_pointer(user_data_), ({n_words},), np.int64)",
        "    if dim != u[2] or expanded != u[3]:",
        "        return -1",
        "    x = numba.carray(x_, (dim,))",
        *slot_arrays(slots_expand),
        f"    ok, (values,) = _call_at(u[1], _EXPAND_RET, ({expand_args},))",
        "    if not ok:",
        "        return -2",
        "    out = numba.carray(out_, (expanded,))",
        "    out[:] = values",
        "    return 0",
        "",
    ]
    return "\n".join(lines)


def _load_callbacks(source: str) -> Any:
    """The generated module for ``source``: written once (atomically) under :func:`cache_dir`,
    imported from its file so numba can cache its functions."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    name = f"bayes_mem_nutpie_callbacks_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    if not path.exists() or path.read_text() != source:
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _intrinsics():
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def call_at(typingctx, address, ret_type, args):
        """Call the numba-compiled function at ``address`` (numba's own calling convention; it
        takes one tuple, ``args``) and return ``(ok, result)``: ``ok`` is False where it raised
        (then ``result`` is zeros, never read). Like nutpie's ``except Exception: return 1``,
        the exception is dropped (a raise with a runtime message leaks its few bytes)."""
        ret = ret_type.instance_type
        sig = types.Tuple((types.boolean, ret))(address, ret_type, args)

        def codegen(context, builder, signature, llargs):
            argtys = (signature.args[2],)
            fnty = context.call_conv.get_function_type(ret, argtys)
            callee = builder.inttoptr(llargs[0], fnty.as_pointer())
            status, out = context.call_conv.call_function(builder, callee, ret, argtys,
                                                          [llargs[2]])  # fmt: skip
            return context.make_tuple(builder, signature.return_type, [status.is_ok, out])

        return sig, codegen

    @intrinsic
    def void_pointer(typingctx, address):
        def codegen(context, builder, signature, llargs):
            return builder.inttoptr(llargs[0], cgutils.voidptr_t)

        return types.voidptr(address), codegen

    @intrinsic
    def int64_pointer(typingctx, pointer):
        sig = types.CPointer(types.int64)(pointer)

        def codegen(context, builder, signature, llargs):
            return builder.bitcast(llargs[0], context.get_value_type(sig.return_type))

        return sig, codegen

    return call_at, void_pointer, int64_pointer


_call_at, _void_pointer, _int64_pointer = _intrinsics()


def _user_data(header: tuple[int, int, int, int], arrays: list[np.ndarray]) -> np.ndarray:
    words = np.zeros(_HEADER + len(arrays) * (1 + _MAX_NDIM), dtype=np.int64)
    words[:_HEADER] = header
    for k, a in enumerate(arrays):
        base = _HEADER + k * (1 + _MAX_NDIM)
        words[base] = a.ctypes.data
        words[base + 1 : base + 1 + a.ndim] = a.shape
    return words


@functools.cache
def _compiled_model_class():
    """:class:`CachedModel`, defined on first use (nutpie is imported only by the nightly job)."""
    from nutpie.compile_pymc import CompiledPyMCModel

    @dataclasses.dataclass(frozen=True)
    class CachedModel(CompiledPyMCModel):
        """nutpie's compiled model with the cached callbacks; ``user_data`` is the flat int64
        array the callbacks read (addresses, then each data slot's pointer and shape)."""

        slot_keys: tuple[str, ...] = ()
        addresses: tuple[int, int] = (0, 0)

        def with_data(self, **updates):
            shared = dict(self.shared_data)
            for name, new_val in updates.items():
                keys = [k for v, k in self.shared_var_keys.items() if v.name == name]
                if not keys:
                    raise KeyError(f"Unknown shared variable: {name}")
                (key,) = keys
                old = shared[key]
                val = np.array(new_val, dtype=old.dtype, order="C", copy=True)
                if val.ndim != old.ndim:
                    raise ValueError(f"Shared variable {name} must have rank {old.ndim}")
                val.flags.writeable = False
                shared[key] = val
            header = (*self.addresses, self.n_dim, self.n_expanded)
            user_data = _user_data(header, [shared[k] for k in self.slot_keys])
            return dataclasses.replace(self, shared_data=shared, user_data=user_data)

    return CachedModel


def compile_model(model: Any) -> Any:
    """``nutpie.compile_pymc_model(model)`` (numba backend, default options) with the C
    callbacks from the on-disk cache: the same compiled model, the same draws for a seed.

    Falls back to ``nutpie.compile_pymc_model`` where the generated callbacks cannot express
    the model's types, or where the cache directory cannot be written (logged).

    Examples
    --------
    Compiling takes seconds, so it is not run here:

    >>> import pymc as pm
    >>> with pm.Model() as model:
    ...     x = pm.Normal("x", pm.Data("m", np.zeros(3)), 1.0)
    >>> compiled = compile_model(model)  # doctest: +SKIP
    >>> compiled.with_data(m=np.ones(3))  # doctest: +SKIP
    """
    import nutpie
    from nutpie import compile_pymc as cp
    from pymc.initial_point import make_initial_point_fn

    initial_point_fn = cp._wrap_with_lock(
        make_initial_point_fn(
            model=model, default_strategy="support_point", jitter_rvs=set(model.free_RVs),
            return_transformed=True,
        )
    )  # fmt: skip
    n_dim, n_expanded, logp_pt, expand_pt, ip_fn, shape_info, reparam = cp._make_functions(
        model, mode="NUMBA", compute_grad=True, join_expanded=True,
        pymc_initial_point_fn=initial_point_fn,
    )  # fmt: skip
    shared_vars: list[Any] = []
    for var in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
        if var not in shared_vars:
            shared_vars.append(var)
    keys = {var: f"slot{k}" for k, var in enumerate(shared_vars)}
    shared_data = {}
    for var, key in keys.items():
        value = np.array(var.get_value(), order="C", copy=True)
        value.flags.writeable = False
        shared_data[key] = value
    data = {fn_pt: [shared_data[keys[v]] for v in fn_pt.get_shared()]
            for fn_pt in (logp_pt, expand_pt)}  # fmt: skip
    try:
        if any(a.ndim > _MAX_NDIM for a in shared_data.values()):
            raise NotImplementedError(f"data of rank > {_MAX_NDIM}")
        logp_fn = _compiled_graph_function(logp_pt, n_dim, data[logp_pt], _LOGP_RET)
        expand_fn = _compiled_graph_function(expand_pt, n_dim, data[expand_pt], _EXPAND_RET)
        module = _load_callbacks(
            callback_source(
                [shared_vars.index(v) for v in logp_pt.get_shared()],
                [shared_vars.index(v) for v in expand_pt.get_shared()],
                [shared_data[keys[v]].ndim for v in shared_vars],
                [shared_data[keys[v]].dtype.name for v in shared_vars],
            )
        )
    except NotImplementedError as exc:
        log.info("compile cache not used (%s): nutpie.compile_pymc_model", exc)
        return nutpie.compile_pymc_model(model)
    except OSError as exc:  # the cache directory cannot be written: compile as nutpie does
        log.warning("compile cache directory unusable (%s): nutpie.compile_pymc_model", exc)
        return nutpie.compile_pymc_model(model)
    addresses = []
    for fn in (logp_fn, expand_fn):  # numba's own calling convention, not the C wrapper's
        cres = fn.overloads[fn.nopython_signatures[0].args]
        addresses.append(cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name))
    slot_keys = tuple(keys[v] for v in shared_vars)
    header = (addresses[0], addresses[1], n_dim, n_expanded)
    user_data = _user_data(header, [shared_data[k] for k in slot_keys])
    dims, coords = cp._prepare_dims_and_coords(model, shape_info, reparam)
    return _compiled_model_class()(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=module.logp,
        compiled_expand_func=module.expand,
        initial_point_func=ip_fn,
        shared_data=shared_data,
        shared_var_keys=keys,
        user_data=user_data,
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_pt,
        expand_func=expand_pt,
        reparameterized_names=reparam,
        slot_keys=slot_keys,
        addresses=(addresses[0], addresses[1]),
    )
