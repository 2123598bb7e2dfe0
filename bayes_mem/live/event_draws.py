"""Counter-based random draws of one signal event: the Thompson draw of the win rate and one joint
draw of the payoff sizes, as a pure function of the event's *material* (bytes).

Why not a numpy ``Generator`` per event: building one (``SeedSequence`` + ``PCG64``) costs ~10
us, the largest part of a keyed decision, and numpy's samplers draw from one stream, so the
draws of 1,000 events with their own streams cannot be made in one vectorised call. Here an
event's random numbers are the words of a hash of its material, so a tick's draws are made for
all events at once (:func:`draw_batch`) and equal, to the last bit, what the scalar path
(:func:`draw_one`, one :meth:`~bayes_mem.live.engine.TradingEngine.signal` call) gives.

Material. A keyed event: ``b"k"``, the engine's seed and the key (:func:`keyed_material`): its
draws depend on the seed and the key only (and the posterior parameters, i.e. the outcomes so
far), so a restarted process repeats them. A keyless event: ``b"u"`` and one 64-bit word drawn
from the engine's generator (:func:`raw_material`): one word per keyless event, in event order.

Words. ``blake2b(material || tag, digest_size=64)``: eight 64-bit words, each a uniform
``((w >> 12) + 1/2) 2^-52`` in (0, 1) (52 bits, exact). Tag ``b""`` (attempt 0) gives the eight
uniforms of the four Gamma variates' first attempts (a normal by ``ndtri`` of one uniform, an
acceptance uniform); a rejected attempt ``r`` of variate ``s`` takes the words of tag
``(s, r)``; shapes below 1 and the hyperparameter draw of a full-Bayes family take their own
tags. Distinct materials give independent streams (a cryptographic hash of distinct inputs).

Draws. ``Gamma(alpha)`` by Marsaglia and Tsang (2000) for ``alpha >= 1`` (acceptance >= 95%),
and ``Gamma(alpha + 1) U^(1 / alpha)`` below 1 (in logs). The win rate ``p = G_a / (G_a + G_b)``
is ``Beta(a, b)``; the payoff sizes are ``W = k beta / G_w`` and ``L = k beta / G_l`` as in
:func:`~bayes_mem.live.payoff.draw_sizes`.

Bitwise equality of the two paths. The vectorised path computes only what is exact in both:
``+ - * /`` and ``sqrt`` (correctly rounded in IEEE arithmetic, numpy and Python alike) and
``scipy.special.ndtri`` (the same compiled routine for an array and a scalar). The one
comparison that needs a ``log`` (Marsaglia and Tsang's acceptance test when the squeeze fails,
~7% of variates) is vectorised with numpy's ``log``, which may differ from ``math.log`` in the
last bits: it is trusted only where the two sides differ by more than a relative 1e-9, far above
that. Every other row (a rejected attempt, a borderline test, a shape below 1) is redone by the
scalar function itself. The variate's value never involves a ``log`` (``d v^3``).
"""

from __future__ import annotations

import hashlib
import math
import struct

import numpy as np
from scipy.special import ndtri

__all__ = [
    "draw_batch",
    "draw_one",
    "draw_p",
    "draw_size_gammas",
    "keyed_material",
    "raw_material",
    "words_batch",
    "words_one",
]

_U = 2.0**-52
_THIRD = 1.0 / 3.0
_MAX_ATTEMPTS = 1000  # Marsaglia-Tsang accepts >= 95% per attempt: never reached
_unpack = struct.Struct("<8Q").unpack
_blake = hashlib.blake2b
_sqrt, _log = math.sqrt, math.log


def keyed_material(seed_bytes: bytes, key: str) -> bytes:
    """The material of a keyed event (``seed_bytes``: :func:`seed_prefix` of the engine's seed).

    Examples
    --------
    >>> keyed_material(seed_prefix(7), "SPY:1")
    b'k\\x01\\x00\\x07SPY:1'
    """
    return seed_bytes + key.encode("utf-8", "surrogatepass")


def seed_prefix(seed: int) -> bytes:
    """``b"k"``, the seed's byte length and its bytes (little-endian): the keyed material's
    prefix (no two (seed, key) pairs give the same material).

    Examples
    --------
    Seed 7 is one byte, 256 two (little-endian ``00 01``):

    >>> seed_prefix(7), seed_prefix(256)
    (b'k\\x01\\x00\\x07', b'k\\x02\\x00\\x00\\x01')
    """
    raw = seed.to_bytes(max(1, (seed.bit_length() + 7) // 8), "little")
    return b"k" + len(raw).to_bytes(2, "little") + raw


def raw_material(word: int) -> bytes:
    """The material of a keyless event: one 64-bit word from the engine's generator.

    Examples
    --------
    >>> raw_material(1)  # b"u" and eight little-endian bytes
    b'u\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00'
    """
    return b"u" + word.to_bytes(8, "little")


def _words(material: bytes, tag: bytes = b"") -> tuple[int, ...]:
    return _unpack(_blake(material + tag, digest_size=64).digest())


def words_batch(materials: list[bytes]) -> np.ndarray:
    """(n, 8) uint64: the attempt-0 words of each material (tag ``b""``).

    Examples
    --------
    Each row is :func:`words_one` of its material:

    >>> material = keyed_material(seed_prefix(7), "SPY:1")  # engine seed 7, key "SPY:1"
    >>> words = words_batch([material, raw_material(1)])
    >>> words.shape, words.dtype.name, words[0].tolist() == list(words_one(material))
    ((2, 8), 'uint64', True)
    """
    if not materials:
        return np.zeros((0, 8), dtype=np.uint64)
    digests = b"".join([_blake(m, digest_size=64).digest() for m in materials])
    return np.frombuffer(digests, dtype="<u8").reshape(len(materials), 8)


def _uniform(w: int) -> float:
    return ((w >> 12) + 0.5) * _U


def _mt_attempt(alpha: float, wx: int, wu: int) -> float | None:
    """One Marsaglia-Tsang attempt for ``alpha >= 1``: the variate, or None if rejected."""
    d = alpha - _THIRD
    c = 1.0 / math.sqrt(9.0 * d)
    x = float(ndtri(_uniform(wx)))
    v = 1.0 + c * x
    if v <= 0.0:
        return None
    v = v * v * v
    u = _uniform(wu)
    xx = x * x
    if u < 1.0 - 0.0331 * (xx * xx):
        return d * v
    if math.log(u) < 0.5 * xx + d * (1.0 - v + math.log(v)):
        return d * v
    return None


def _gamma_ge1(alpha: float, material: bytes, slot: int, wx: int, wu: int) -> float:
    """A Gamma(alpha >= 1) variate: the first attempt (:func:`_mt_attempt`, inlined: this is
    the scalar hot path), then the retries."""
    d = alpha - _THIRD
    c = 1.0 / _sqrt(9.0 * d)
    x = float(ndtri(((wx >> 12) + 0.5) * _U))
    v = 1.0 + c * x
    if v > 0.0:
        v = v * v * v
        u = ((wu >> 12) + 0.5) * _U
        xx = x * x
        if u < 1.0 - 0.0331 * (xx * xx) or _log(u) < 0.5 * xx + d * (1.0 - v + _log(v)):
            return d * v
    g = None
    r = 0
    while g is None:
        r += 1
        if r > _MAX_ATTEMPTS:  # pragma: no cover - probability < 0.05^1000
            raise RuntimeError("gamma sampler did not accept")
        w = _words(material, bytes((1, slot)) + r.to_bytes(4, "little"))
        g = _mt_attempt(alpha, w[0], w[1])
    return g


def _log_gamma(alpha: float, material: bytes, slot: int, wx: int, wu: int) -> float:
    """log of a Gamma(alpha) variate, any alpha > 0 (below 1: Gamma(alpha + 1) U^(1/alpha))."""
    if alpha >= 1.0:
        return math.log(_gamma_ge1(alpha, material, slot, wx, wu))
    g = _gamma_ge1(alpha + 1.0, material, slot, wx, wu)
    u = _uniform(_words(material, bytes((2, slot)))[0])
    return math.log(g) + math.log(u) / alpha


def hyper_uniform(material: bytes) -> float:
    """The uniform that picks a full-Bayes family's hyperparameter draw for this event.

    Examples
    --------
    A pure function of the material (its own tag: independent of the event's other draws):

    >>> material = keyed_material(seed_prefix(7), "SPY:1")  # engine seed 7, key "SPY:1"
    >>> round(hyper_uniform(material), 6), hyper_uniform(material) == hyper_uniform(material)
    (0.772703, True)
    """
    return _uniform(_words(material, b"\x03")[0])


def words_one(material: bytes) -> tuple[int, ...]:
    """The attempt-0 words of one material (a row of :func:`words_batch`).

    Examples
    --------
    Eight 64-bit words of ``blake2b(material)``:

    >>> material = keyed_material(seed_prefix(7), "SPY:1")  # engine seed 7, key "SPY:1"
    >>> words = words_one(material)
    >>> len(words), words[0]
    (8, 14949719233083785920)
    """
    return _words(material)


def draw_one(
    material: bytes, a: float, b: float, alpha_w: float, alpha_l: float,
    words: tuple[int, ...] | None = None,
) -> tuple[float, float, float]:  # fmt: skip
    """``(p, G_w, G_l)``: the win rate's ``Beta(a, b)`` draw and the two payoff Gamma variates
    (shapes ``alpha_w``, ``alpha_l``) of the event of ``material``. ``words``: its attempt-0
    words when already computed. The two parts are independent (:func:`draw_p`,
    :func:`draw_size_gammas`: variates 0-1 and 2-3).

    Examples
    --------
    A Beta(3, 7) win rate and two Gamma(4) variates; the same material gives the same draws:

    >>> material = keyed_material(seed_prefix(7), "SPY:1")  # engine seed 7, key "SPY:1"
    >>> p, g_w, g_l = draw_one(material, 3.0, 7.0, 4.0, 4.0)
    >>> round(p, 6), round(g_w, 6), round(g_l, 6)
    (0.30366, 3.801222, 2.921732)
    >>> draw_one(material, 3.0, 7.0, 4.0, 4.0) == (p, g_w, g_l)
    True
    """
    w = _words(material) if words is None else words
    return (draw_p(material, a, b, w), *draw_size_gammas(material, alpha_w, alpha_l, w))


def draw_p(material: bytes, a: float, b: float, w: tuple[int, ...]) -> float:
    """The ``Beta(a, b)`` draw of :func:`draw_one` (``w``: :func:`words_one`).

    Examples
    --------
    >>> material = keyed_material(seed_prefix(7), "SPY:1")  # engine seed 7, key "SPY:1"
    >>> p = draw_p(material, 3.0, 7.0, words_one(material))
    >>> round(p, 6), p == draw_one(material, 3.0, 7.0, 4.0, 4.0)[0]
    (0.30366, True)
    """
    if a >= 1.0 and b >= 1.0:
        ga = _gamma_ge1(a, material, 0, w[0], w[1])
        gb = _gamma_ge1(b, material, 1, w[2], w[3])
        p = ga / (ga + gb)
    else:  # in logs: a tiny shape's variate may underflow
        la = _log_gamma(a, material, 0, w[0], w[1])
        lb = _log_gamma(b, material, 1, w[2], w[3])
        p = 1.0 / (1.0 + math.exp(lb - la)) if lb - la < 700.0 else 0.0
    return p


def draw_size_gammas(
    material: bytes, alpha_w: float, alpha_l: float, w: tuple[int, ...]
) -> tuple[float, float]:
    """The two payoff Gamma variates of :func:`draw_one` (``w``: :func:`words_one`).

    Examples
    --------
    >>> material = keyed_material(seed_prefix(7), "SPY:1")  # engine seed 7, key "SPY:1"
    >>> g_w, g_l = draw_size_gammas(material, 4.0, 4.0, words_one(material))
    >>> round(g_w, 6), round(g_l, 6), (g_w, g_l) == draw_one(material, 3.0, 7.0, 4.0, 4.0)[1:]
    (3.801222, 2.921732, True)
    """
    if alpha_w >= 1.0:
        gw = _gamma_ge1(alpha_w, material, 2, w[4], w[5])
    else:
        gw = math.exp(_log_gamma(alpha_w, material, 2, w[4], w[5]))
    if alpha_l >= 1.0:
        gl = _gamma_ge1(alpha_l, material, 3, w[6], w[7])
    else:
        gl = math.exp(_log_gamma(alpha_l, material, 3, w[6], w[7]))
    return gw, gl


def draw_batch(
    materials: list[bytes], words: np.ndarray, a: np.ndarray, b: np.ndarray,
    alpha_w: np.ndarray, alpha_l: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`draw_one` of every row (``words``: :func:`words_batch` of ``materials``), equal to
    it to the last bit: the first attempts that pass the squeeze test are computed here, every
    other row by :func:`draw_one`.

    Examples
    --------
    4,000 keyed events: the win rates average about ``3 / (3 + 7)`` = 0.3 and every row equals
    :func:`draw_one` to the last bit:

    >>> import numpy as np
    >>> materials = [keyed_material(seed_prefix(7), f"event-{i}") for i in range(4000)]
    >>> shape = np.full(len(materials), 1.0)
    >>> p, g_w, g_l = draw_batch(materials, words_batch(materials), 3 * shape, 7 * shape,
    ...                          4 * shape, 4 * shape)
    >>> round(float(p.mean()), 2), round(float(g_w.mean()), 1)  # Gamma(4) has mean 4
    (0.3, 4.0)
    >>> all(draw_one(m, 3.0, 7.0, 4.0, 4.0) == (p[i], g_w[i], g_l[i])
    ...     for i, m in enumerate(materials))
    True
    """
    n = len(materials)
    shapes = np.stack([a, b, alpha_w, alpha_l], axis=1)  # (n, 4)
    u = ((words >> np.uint64(12)).astype(float) + 0.5) * _U  # (n, 8)
    x = ndtri(u[:, 0::2])
    ua = u[:, 1::2]
    with np.errstate(invalid="ignore", divide="ignore"):
        d = shapes - _THIRD
        c = 1.0 / np.sqrt(9.0 * d)
        v = 1.0 + c * x
        ok = v > 0.0
        v = v * v * v
        xx = x * x
        squeeze = ua < 1.0 - 0.0331 * (xx * xx)
        # the log test, vectorised, trusted only where it is not within a margin far above
        # any difference between numpy's log and math.log (a few ulp): borderline rows and
        # rejections are redone by the scalar function
        lhs = np.log(ua)
        logv = np.log(v)
        rhs = 0.5 * xx + d * (1.0 - v + logv)
        margin = 1e-9 * (np.abs(lhs) + 0.5 * xx + d * (1.0 + v + np.abs(logv)))
        ok &= squeeze | (lhs < rhs - margin)
        ok &= shapes >= 1.0
        g = d * v
    p = g[:, 0] / (g[:, 0] + g[:, 1])
    gw, gl = g[:, 2].copy(), g[:, 3].copy()
    redo = np.flatnonzero(~ok.all(axis=1))
    if redo.size:
        wl = words[redo].tolist()
        al, bl, awl, all_ = a[redo].tolist(), b[redo].tolist(), alpha_w[redo].tolist(), \
            alpha_l[redo].tolist()  # fmt: skip
        for j, i in enumerate(redo.tolist()):
            p[i], gw[i], gl[i] = draw_one(materials[i], al[j], bl[j], awl[j], all_[j], wl[j])
    assert p.shape == (n,)
    return p, gw, gl
