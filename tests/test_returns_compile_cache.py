"""Why the returns model's nutpie compilation is not cached on disk (issue 17, nightly_scale.md).

``nutpie.compile_pymc_model(model, cache=True)`` passes ``cache=True`` to ``numba.cfunc`` for
its two C callbacks (log-density and expand). numba keys a cache entry on the function's bytecode
and the pickled contents of its closure; nutpie's callbacks close over the inner PyTensor
dispatcher and over a record type whose field names are fresh ``uuid4`` keys in every
compilation, so a second process never finds the first one's entry: it compiles again and
writes another entry (safe, never a stale hit, but no saving and a cache directory that grows
by ~3.5 MB a process at 20 symbols). This test pins that behaviour: if a nutpie release makes
the callbacks hit across processes, it fails, and the cache's safety (two different models in
fresh processes each sampling their own posterior) must then be tested before it is enabled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = """
import json, sys
import numpy as np
import nutpie
from bayes_mem.offline import returns_model as rm

n = 3
r = np.resize([1.0, -1.0], (50, n))
ones = np.ones(n)
m = rm.build_returns_model(r, [f"S{i}" for i in range(n)], ones, ones)
cm = nutpie.compile_pymc_model(m, cache=True)
print(json.dumps({"logp_hits": cm.compiled_logp_func.cache_hits,
                  "expand_hits": cm.compiled_expand_func.cache_hits}))
"""


@pytest.mark.slow
def test_nutpie_callback_cache_never_hits_in_a_second_process(tmp_path: Path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # fmt: skip
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", _PROBE], env=env, check=True,
                             capture_output=True, text=True)  # fmt: skip
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    entries = sorted(p.name for p in tmp_path.rglob("compile_pymc*.nbc"))
    # each process compiled its callbacks anew and stored them under a new key
    assert runs == [{"logp_hits": 0, "expand_hits": 0}] * 2
    assert len([e for e in entries if "logp_numba" in e]) == 2
    assert len([e for e in entries if "expand_numba" in e]) == 2
