"""The verifier's numeric settings and counts, each with its reason (one table: ``VERIFY_SETTINGS``).

``TOLERANCES`` is the same table under its earlier name (``symode.verify.TOLERANCES``), kept for callers.
"""
from __future__ import annotations

#: Settings of claim checking (symode.verify.claims and the modules it uses).
VERIFY_SETTINGS: dict = {
    # Two sides "agree" at a point when |LHS - RHS| is below 10**-agree_digits times the scale of the terms
    # (the largest summand met in evaluating either side, or the sides themselves), at a precision of at least
    # agree_bits.  Relative to the terms, never an absolute floor: exp(-100) = 0 is judged against exp(-100).
    # 60 digits at >= 384 bits (115 digits): a claim false by a relative 1e-87 (tanh(100 + x**2) = 1) is
    # seen, not "agreed" at a precision that cannot see it.
    "agree_digits": 60,
    "agree_bits": 384,
    # Working precisions (bits) of the ball evaluation, tried in turn until the point is decided: "differ"
    # (the ball of LHS - RHS excludes 0: a proof at that point, however small the difference), or "agree".
    # 128 bits decides most differences cheaply; 384 bits is where agreement starts to count; 1536 bits
    # resolves cancellation between huge terms.  A point still undecided at the last one is "unresolved".
    "precisions": (128, 384, 1536),
    # Precisions past those, only to *separate* (never to agree): a claim without symbols, and an exact
    # nonzero difference SymPy found, when neither contains an integral or a sum (cheap that far).  1 - tanh(1000)
    # = 5e-869 ~ 2**-2885 and sqrt(1 + exp(-2000)) - 1 = 1.3e-869 show at 4096 bits; 16384 bits reaches
    # differences down to ~1e-4900.  Still no difference there is no TRUE for a constant (UNDECIDED).
    "deep_precisions": (4096, 16384),
    # A constant claim (no symbols) that SymPy cannot prove is TRUE (numeric, 1 point) only when every term
    # lies within 2**±constant_max_magnitude: a term far from 1 is how a difference hides below any fixed
    # precision (1 - tanh(1000) = 5e-869; sin(X) - X ~ X**3/6 with X = 1 - cos(1e-299), 2**-17898, beat a
    # precision bound proportional to the magnitude), so past it the claim is UNDECIDED.
    "constant_max_magnitude": 64,
    # A claim without symbols is TRUE by numbers alone only where the precision that found no difference
    # exceeds constant_guard_bits + constant_bits_per_magnitude * M, M the largest |log2| of any of its terms'
    # values: a difference of constants is typically no smaller than the smallest term or the reciprocal of
    # the largest (1 - tanh(1000) = 2/(exp(2000) + 1), M = 2885), and twice that leaves as many bits again for
    # cancellation among them.  An ordinary constant (M < 100) is judged at 1536 bits as before; beyond the
    # last precision the claim is UNDECIDED (sqrt(1 + exp(-20000)) = 1), never TRUE.
    "constant_guard_bits": 512,
    "constant_bits_per_magnitude": 2,
    # Random points evaluated before the symbolic proof (cheap screening for FALSE claims), besides the
    # small, targeted and extreme points.
    "screen_points": 4,
    # Random points of the numeric fallback ("TRUE (numeric)"); the targeted and extreme points come on top.
    "numeric_points": 24,
    # Samples tried per wanted random point before giving up (points outside the domain are skipped).
    "max_tries_factor": 4,
    # Small-rational points (1/2, 2, -1, ...) tried first, for a readable counterexample.
    "small_points": 10,
    # Targeted points: at most this many critical arguments (function arguments, denominators, kinks: more make
    # the verdict UNDECIDED, never a silent TRUE), this
    # many roots of each per symbol, and these offsets (in units of 1/|du/ds| at the root) around each root.
    # The offsets put a claim such as tanh(10000*x)**2 = 1 where it fails (|x| ~ 1e-4).
    "max_critical": 32,
    "max_roots": 4,
    # Largest degree of a polynomial critical argument whose real roots all become targets (from nroots on
    # its square-free part); above, the rigorous search keeps the max_roots nearest the origin.
    "max_polynomial_degree": 64,
    # Stationary points of critical arguments in two or more symbols (symode.verify.zeros.stationary_points):
    # Newton's method on the gradient from this many random starts, at most this many iterations each
    # (quadratic convergence needs a handful; a start that wanders off is abandoned).  A claim false only in
    # a small disc (x**2 + y**2 < 1e-6) is seen at the disc's centre.
    "stationary_starts": 8,
    "stationary_iterations": 100,
    # Offsets (relative to max(1, |value|)) of the points beside each stationary point, in its first two
    # symbols: a stationary point that is a pole (1/(x**2 + y**2)) is outside the domain, the region around it
    # is not.
    "stationary_offsets": ("1/1000", "1/1000000"),
    # Evaluations (balls over intervals) of the rigorous search for the zeros of one transcendental critical
    # argument in one symbol (symode.verify.points._search): enough to isolate the zeros near the origin to
    # 1e-15 and to find a band of width 1e-3 anywhere in [-10, 10], while a claim with many such arguments
    # still costs well under a second each.
    "root_search_evaluations": 3000,
    "root_offsets": ("0", "1/2", "-1/2", "2", "-2"),
    # Magnitudes of the extreme points (one symbol at a time): identities that hold only in a band of
    # magnitudes, and cancellation between huge terms, show there.
    "extremes": ("1/1000000", "1000000"),
    # Wide samples: |value| log-uniform in [10**-1, 10**3] (half of the random points; the other half are in
    # [-3, 3]), so identities that hold only near the origin (sqrt((x + 5)**2) = x + 5) are caught.
    "wide_log10": (-1.0, 3.0),
    # Wall-clock seconds for the symbolic proof of one claim (simplify can run unbounded).
    "simplify_seconds": 20.0,
    # Wall-clock seconds for simplifying a FALSE claim's corrected right-hand side (cosmetic: the
    # unsimplified expression is reported when it runs out).
    "correction_seconds": 5.0,
    # Points at which a simplified correction is confirmed against the expression it replaces before it is
    # shown.
    "confirm_points": 3,
    # Points (small and narrow random ones) at which the integrals of a claim that SymPy proved with its
    # antiderivatives are evaluated by quadrature to confirm the proof (quadrature is the costly part).
    "confirm_integral_points": 8,
    # Targeted points outside [-3, 3] (kinks, zeros of arguments, where an integrand's kink meets an end) at
    # which a claim with integrals is also probed by quadrature, only a difference counting there: SymPy's
    # antiderivative, used to screen, can be wrong exactly there (|sin| past 2*pi), and the random quadrature
    # points are narrow.  Quadrature is the costly part of a check: a handful.
    "probe_integral_points": 3,
    # Significant digits of a non-rational value shown in a report.
    "shown_digits": 20,
    # Largest |exponent| of a power evaluated with exact rationals (to show an exact value at a point):
    # 2**(2**16) already has 65536 bits; larger powers are shown from the ball.
    "max_exact_exponent": 1000,
    # Sums over data: counts (positive integer symbols, the upper limits of sums) are sampled from 1 to
    # max_count, and indexed data x[k] is a sequence of sequence_length values (k = 0 ... 47), each sampled
    # like a real symbol: a claim about sum(g, i, 1, N) is checked with up to 12 terms, and x[i + 1] or
    # x[2*i] still finds its data.
    "max_count": 12,
    "sequence_length": 48,
    # Counts past the random ones, one count at a time (extreme points): a claim that holds for N = 1 ... 12
    # only (a difference with the factor (N - 1)(N - 2)...(N - 12)) differs at 25 and at 100 (the data
    # lengthened to match).
    "count_extremes": (25, 100),
    # Targeted counts: the integers beside each zero of a critical argument in a count (|N - 12.5| at 12, 13,
    # ...), up to this (a sum of 1000 terms is still cheap in ball arithmetic).
    "max_target_count": 1000,
    # Counts swept 1, 2, ..., d + 1 where LHS - RHS is a polynomial of degree d in the count (a nonzero one
    # has at most d zeros, so a difference zero at every sampled count still shows), up to this many; a higher
    # degree leaves the claim UNDECIDED, never TRUE.
    "count_sweep": 64,
    # -- claims about a model's solution, checked at the document's values (symode.verify.modelclaims) ------
    # Digits asked of the oracle (symode.compute(model, "oracle", digits=30)) and of the sweeps that give
    # solution values and integrals along the solution: the issue's "30 digits", twice float64's 16.
    "oracle_digits": 30,
    # Two sides agree when LHS - RHS, computed from values with error bounds ~1e-29 relative, contains 0 and
    # its radius is below 10**-25 times the terms' scale: room for a few dozen bounded values in one claim,
    # and nine digits beyond float64, so a formula that is right only to float64 accuracy cannot pass.
    "oracle_agree_digits": 25,
    # The sides differ (FALSE) only when LHS - RHS excludes 0 with every value's radius multiplied by this:
    # the bounds are estimates (two routes, two precisions), so a FALSE needs a difference a million times
    # larger than them (still ~1e-23 relative: a wrong formula differs at O(1)).
    "oracle_false_factor": 10 ** 6,
    # Precision (bits) of the ball arithmetic on those values: 154 digits, far below every radius.
    "oracle_bits": 512,
    # Points where a model claim is checked numerically: the document's values and a second point with every
    # value moved by a few percent and the times by an increasing quadratic (symode.verify.odemodel._moved); a
    # claim that holds only at the document's values (a dropped term proportional to mu - 1 at mu = 1, to t0 at
    # t0 = 0, or to t0 - 2*ti + t1 at ti midway) differs at the second.  TRUE (oracle) needs agreement at both.
    "oracle_points": 2,
    # Samples (small rationals) of a model claim's symbols that have no value in the document (they are
    # universally quantified): a side that depends on them while the other does not differs at one of them.
    "oracle_sample_points": 3,
    # Further random values of those symbols (half narrow, half wide), besides targeted and extreme ones: a
    # term that vanishes at the few small samples (abs(c + 1) - c - 1 at c >= -1) shows at one of them.  The
    # model's values are computed once; each sample is only ball arithmetic.
    "oracle_free_points": 12,
    # A function argument larger than this in magnitude at the document's values puts a model claim's
    # tanh/exp/atan on one flat side of a switch (tanh(1000*(k - 0.3)) at k = 1/2: tanh(200)); the claim is then
    # also checked across the argument's zero, as across a kink of abs.
    "switch_argument": 30,
    # Equal pieces of the backward sweep (z restarted from the forward solve at each piece end, besides the
    # observation times and the times the claims name): the oracle's adjoint uses 4; 8 keeps back-solving
    # a contracting system short.
    "oracle_sweep_pieces": 8,
}

#: The earlier name of :data:`VERIFY_SETTINGS` (the same dict).
TOLERANCES = VERIFY_SETTINGS
