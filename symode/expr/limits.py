"""Parse-time caps of the spec grammar (:data:`LIMITS`), shared by the expression parser and the literals."""
from __future__ import annotations

__all__ = ["LIMITS", "effective_exponent_excess"]

#: Parse-time caps.  Each one bounds the time or memory a (possibly hostile) spec can cost before any
#: numerical work starts; violating one raises SpecError naming the cap and its value.
LIMITS: dict = {
    # Longest expression text in characters.  Bounds the parser's time and memory and the size of the
    # syntax tree; one written-out state equation of a 2-state, 16-unit tanh MLP is ~730 characters.
    "max_text_length": 10_000,
    # Most syntax nodes (numbers, names, operations, calls) in one expression; the 16-unit MLP equation
    # above has ~230.  Bounds SymPy's construction work (a 1,000-term sum of distinct names: ~0.2 s).
    "max_nodes": 2_000,
    # Deepest nesting of brackets or of operations.  The converter recurses once per level, SymPy's own
    # algorithms recurse on expression depth, and Python's parser refuses brackets beyond 200 deep and
    # fails (MemoryError) on ~9,000 nested unary minuses.
    "max_depth": 100,
    # Largest |exponent| of ``**`` when the exponent is a number.  ``9**9**9**9`` would otherwise ask
    # SymPy for 9**387420489 (3.7e8 digits); x**100 is already beyond any sensible model term.
    "max_exponent": 100,
    # Most decimal digits in the numerator or denominator of a constant produced while parsing.  Twice
    # float64's decimal range (2 x 308) plus slack, so a product of two representable literals still
    # parses; SymPy's root extraction on larger integers costs ~0.1-0.5 s each.
    "max_constant_digits": 620,
    # Most significant digits in one decimal literal: 100 is far beyond the 30-50 digits the mpmath oracle
    # uses; more is a typo or an attempt to make arithmetic slow.
    "max_significant_digits": 100,
    # A literal x must satisfy x == 0 or 10**-300 <= |x| <= 10**300: a value outside float64's finite
    # normal range (about 2.2e-308 ... 1.8e308, with margin) cannot reach the compiled routes intact.
    "max_decimal_exponent": 300,
    # Wall-clock backstop for the whole conversion.  The caps above bound every cost we know of; this
    # catches SymPy evaluation costs they do not (the largest legitimate expressions take milliseconds).
    "max_parse_seconds": 10.0,
}


def effective_exponent_excess(value) -> str | None:
    """Apply the exponent cap to the powers SymPy built, not only to the exponents as written: SymPy
    multiplies the exponents of a power of a power and adds those of a product of powers, so
    ``((z**100)**100)**100`` is ``z**1000000``.  The parser checks every node's value, and SymPy only
    combines powers at the node that joins them, so the value and its direct arguments are where a new one
    shows.  Returns the message for the first power over the cap, or None."""
    cap = LIMITS["max_exponent"]
    for term in (value, *value.args):
        if term.is_Pow and term.exp.is_Number and abs(term.exp) > cap:
            return (
                f"the effective exponent {term.exp} (powers of powers multiply their exponents, products of "
                f"powers add them) exceeds the cap |exponent| <= {cap} (LIMITS['max_exponent'])"
            )
    return None
