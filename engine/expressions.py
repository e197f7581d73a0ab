"""A whitelisted arithmetic evaluator for schedule values.

Settings files come from strangers, so schedule text is parsed into a Python
syntax tree and only numbers, the variables t/max_f/max_frames/s, a fixed set
of functions and arithmetic/comparison/logic operators are evaluated.  Nothing
is ever passed to ``eval``, ``exec`` or numexpr: all arithmetic is done in
float64 (so ``9**9**9**9`` overflows to inf instead of hanging) and the size
and depth of an expression are bounded.
"""

from __future__ import annotations

import ast
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

MAX_EXPRESSION_CHARS = 4096
MAX_DEPTH = 64
MAX_NODES = 2000

VARIABLES = ("t", "max_f", "max_frames", "s")
CONSTANTS = {"pi": math.pi, "e": math.e}


def _truth(value: np.ndarray) -> np.ndarray:
    """Python truthiness, elementwise: only zero is false (nan is true)."""
    return np.not_equal(value, 0)


def _where(cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(_truth(cond), a, b)


def _min(*args: np.ndarray) -> np.ndarray:
    return functools.reduce(np.minimum, args)


def _max(*args: np.ndarray) -> np.ndarray:
    return functools.reduce(np.maximum, args)


ROUND_DIGITS = 308  # 10**308 is the largest power of ten float64 holds


def _round(x: np.ndarray, ndigits: np.ndarray | float = 0.0) -> np.ndarray:
    """Round half to even at ``ndigits`` decimals, in time independent of ``ndigits``.

    float64 has at most 17 significant digits and magnitudes within 10**±308, so
    digits beyond ±308 change nothing; clipping there keeps the scale finite.  A
    product that overflows means x has no digits at that scale: x is returned.
    """
    if not np.all(np.isfinite(ndigits)):
        raise ValueError("the number of digits must be finite")
    n = np.clip(np.trunc(ndigits), -ROUND_DIGITS, ROUND_DIGITS)
    scale = np.power(10.0, np.abs(n))
    up = np.rint(x * scale) / scale
    down = np.rint(x / scale) * scale
    return np.where(n >= 0, np.where(np.isfinite(x * scale), up, x), down)


FUNCTIONS = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "asin": np.arcsin, "arcsin": np.arcsin, "acos": np.arccos, "arccos": np.arccos,
    "atan": np.arctan, "arctan": np.arctan, "atan2": np.arctan2, "arctan2": np.arctan2,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "exp": np.exp, "expm1": np.expm1, "log": np.log, "log10": np.log10, "log1p": np.log1p,
    "sqrt": np.sqrt, "abs": np.abs, "floor": np.floor, "ceil": np.ceil, "round": _round,
    "min": _min, "max": _max, "where": _where, "fmod": np.fmod,
}
_ARITY = {"atan2": (2, 2), "arctan2": (2, 2), "fmod": (2, 2), "where": (3, 3),
          "min": (1, 64), "max": (1, 64), "round": (1, 2)}

_BINARY = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide, ast.Mod: np.mod, ast.Pow: np.power,
    ast.BitAnd: lambda a, b: np.logical_and(_truth(a), _truth(b)),
    ast.BitOr: lambda a, b: np.logical_or(_truth(a), _truth(b)),
}
_COMPARE = {
    ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater,
    ast.GtE: np.greater_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal,
}


class ExpressionError(ValueError):
    """The text is not an expression of the schedule language."""

    def __init__(self, message: str, fragment: str) -> None:
        super().__init__(message)
        self.fragment = fragment


@dataclass(frozen=True)
class Expression:
    """A validated expression; ``uses`` names the variables it reads, ``nodes`` its size."""

    text: str
    tree: ast.Expression
    uses: frozenset[str]
    nodes: int

    def __call__(self, variables: Mapping[str, float | np.ndarray]) -> float | np.ndarray:
        """The value, or one value per element when a variable (e.g. ``t``) is an array.

        Overflow gives inf and invalid operations nan (never an exception); the
        caller decides whether a non-finite value is an error.
        """
        with np.errstate(all="ignore"):
            return self.evaluate(variables)

    def evaluate(self, variables: Mapping[str, float | np.ndarray]) -> float | np.ndarray:
        """As calling the expression, for a caller that holds ``np.errstate(all="ignore")``
        around many evaluations: entering it costs more than a small expression."""
        value = _evaluate(self.tree.body, variables, self.text)
        return float(value) if np.ndim(value) == 0 else np.asarray(value, dtype=np.float64)


def compile_expression(text: str) -> Expression:
    """Parse and validate ``text``; raise ExpressionError quoting the bad part."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(
            f"expression is {len(text)} characters long (limit {MAX_EXPRESSION_CHARS})",
            text[:40] + "…")
    for ch in text:
        if not (ch.isascii() and (ch.isprintable() or ch in " \t\r\n")):
            raise ExpressionError(f"character {ch!r} (U+{ord(ch):04X}) is not allowed", ch)
    # A trailing comment would hide text; Python-only constructs are rejected below.
    if "#" in text or "\\" in text:
        raise ExpressionError("'#' and '\\' are not allowed", "#" if "#" in text else "\\")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        detail = getattr(exc, "msg", None) or exc.__class__.__name__
        raise ExpressionError(f"not a valid expression ({detail})", text.strip()) from None
    uses, nodes = _validate(tree, text)
    return Expression(text=text, tree=tree, uses=frozenset(uses), nodes=nodes)


def _segment(text: str, node: ast.AST) -> str:
    try:
        return ast.get_source_segment(text.strip(), node) or text.strip()
    except Exception:  # noqa: BLE001 - only used to quote a fragment in an error
        return text.strip()


def _finite_literal(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer literal with hundreds of digits
        return False


def _validate(tree: ast.Expression, text: str) -> tuple[set[str], int]:
    """Walk the tree iteratively, checking node kinds, names, depth and size.

    Returns the variables read and the number of nodes (the cost of one evaluation).
    """
    uses: set[str] = set()
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH or count > MAX_NODES:
            raise ExpressionError("expression is nested too deeply or is too large",
                                  text.strip()[:40])
        children: list[ast.AST]
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise ExpressionError("only numbers are allowed as literals", _segment(text, node))
            if not _finite_literal(node.value):
                raise ExpressionError("number is beyond float64's range (±1.8e308)",
                                      _segment(text, node)[:40])
            children = []
        elif isinstance(node, ast.Name):
            if node.id not in VARIABLES and node.id not in CONSTANTS:
                raise ExpressionError(f"unknown name {node.id!r}", node.id)
            if node.id in VARIABLES:
                uses.add(node.id)
            children = []
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise ExpressionError("operator not allowed", _segment(text, node))
            children = [node.left, node.right]
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.UAdd, ast.USub, ast.Invert, ast.Not)):
                raise ExpressionError("operator not allowed", _segment(text, node))
            children = [node.operand]
        elif isinstance(node, ast.Compare):
            if any(type(op) not in _COMPARE for op in node.ops):
                raise ExpressionError("comparison not allowed", _segment(text, node))
            children = [node.left, *node.comparators]
        elif isinstance(node, ast.BoolOp):
            children = list(node.values)
        elif isinstance(node, ast.IfExp):
            children = [node.test, node.body, node.orelse]
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in FUNCTIONS or node.keywords:
                raise ExpressionError("function not allowed", _segment(text, node))
            low, high = _ARITY.get(name, (1, 1))
            if not low <= len(node.args) <= high:
                raise ExpressionError(f"{name}() takes {low}–{high} arguments"
                                      if low != high else f"{name}() takes {low} argument(s)",
                                      _segment(text, node))
            if any(isinstance(a, ast.Starred) for a in node.args):
                raise ExpressionError("'*' arguments are not allowed", _segment(text, node))
            children = list(node.args)
        else:
            raise ExpressionError(f"{type(node).__name__} is not allowed", _segment(text, node))
        stack.extend((child, depth + 1) for child in children)
    return uses, count


def _evaluate(node: ast.AST, env: Mapping[str, float | np.ndarray], text: str) -> np.ndarray:
    """Value of a validated node; elementwise when a variable is an array.

    Both branches of a condition are evaluated (there are no side effects), so
    the work is one numpy call per node whatever the number of frames.
    """
    if isinstance(node, ast.Constant):
        return np.float64(node.value)
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return np.float64(CONSTANTS[node.id])
        if node.id not in env:
            raise ExpressionError(f"variable {node.id!r} is not available here", node.id)
        return np.asarray(env[node.id], dtype=np.float64)
    if isinstance(node, ast.BinOp):
        a, b = _evaluate(node.left, env, text), _evaluate(node.right, env, text)
        return _BINARY[type(node.op)](a, b) * 1.0
    if isinstance(node, ast.UnaryOp):
        v = _evaluate(node.operand, env, text)
        if isinstance(node.op, ast.USub):
            return -v
        if isinstance(node.op, ast.UAdd):
            return v
        return np.logical_not(_truth(v)) * 1.0
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, env, text)
        result = np.True_
        for op, comparator in zip(node.ops, node.comparators):
            right = _evaluate(comparator, env, text)
            result = np.logical_and(result, _COMPARE[type(op)](left, right))
            left = right
        return result * 1.0
    if isinstance(node, ast.BoolOp):
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        values = [_truth(_evaluate(v, env, text)) for v in node.values]
        return functools.reduce(combine, values) * 1.0
    if isinstance(node, ast.IfExp):
        return _where(_evaluate(node.test, env, text), _evaluate(node.body, env, text),
                      _evaluate(node.orelse, env, text))
    if isinstance(node, ast.Call):
        args = [_evaluate(a, env, text) for a in node.args]
        try:
            return np.asarray(FUNCTIONS[node.func.id](*args), dtype=np.float64)
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise ExpressionError(f"{node.func.id}() cannot be evaluated ({exc})",
                                  _segment(text, node)) from None
    raise ExpressionError(f"{type(node).__name__} is not allowed", _segment(text, node))
