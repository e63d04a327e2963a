"""Checks Prometheus alerting rules against a real exposition: every series
selector of every `expr` must name a metric the exposition has, with label
matchers on labels that metric carries and values it takes; every label of
`by (...)` must be on each metric the expression selects; every
`{{ $labels.x }}` of an annotation must be a label the alert's series keep
(the `by` labels of an aggregation, else the selected metrics' labels).

A small scanner of the PromQL the rules use (selectors, label matchers,
functions, aggregations with by/without, binary operators, range
durations), not a PromQL parser: `promtool check rules` is the syntax check
where promtool is installed. Used by failover/test_prometheus_rules.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

_TOKEN = re.compile(r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<range>\[[^\]]*\])
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<id>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^(){},=<>])
)""", re.VERBOSE)
#: Words that are PromQL syntax, not metric names.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
             "and", "or", "unless", "offset",
             # aggregation operators: `sum by (x) (...)` puts `by` before the parenthesis
             "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
             "bottomk", "topk", "quantile"}
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}


@dataclass
class Selector:
    metric: str
    matchers: list[tuple[str, str, str]] = field(default_factory=list)  # (label, op, value)


@dataclass
class Expr:
    selectors: list[Selector]
    by: list[list[str]]  # the label list of each `by (...)`


def tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot scan {expr[pos:pos + 20]!r} in {expr!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(expr) and expr[pos].isspace():
            pos += 1
    return out


def scan(expr: str) -> Expr:
    """The selectors and `by` label lists of one expression."""
    toks = tokens(expr)
    selectors: list[Selector] = []
    by: list[list[str]] = []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
        if kind == "id" and text in _GROUPING and nxt == "(":
            j = toks.index(("op", ")"), i)
            labels = [t for k, t in toks[i + 2:j] if k == "id"]
            if text == "by":
                by.append(labels)
            i = j + 1
        elif kind == "id" and (text in _KEYWORDS or nxt == "("):
            i += 1  # a keyword, a function or an aggregation
        elif kind == "id":
            sel = Selector(text)
            i += 1
            if i < len(toks) and toks[i][1] == "{":
                i += 1
                while toks[i][1] != "}":
                    (_, label), (_, op), (vkind, raw) = toks[i:i + 3]
                    assert vkind == "str", f"label matcher of {text}: {toks[i:i + 3]}"
                    sel.matchers.append((label, op, raw[1:-1]))
                    i += 3
                    if toks[i][1] == ",":
                        i += 1
                i += 1
            selectors.append(sel)
        else:
            i += 1
    return Expr(selectors, by)


def _series(samples: Samples, metric: str) -> list[dict[str, str]]:
    return [dict(labels) for (name, labels), _ in samples.items() if name == metric]


def check_rule(rule: dict[str, Any], samples: Samples) -> list[str]:
    """What is wrong with one alerting rule, given a real exposition."""
    name = rule.get("alert", "?")
    problems: list[str] = []
    expr = scan(str(rule["expr"]))
    if not expr.selectors:
        problems.append(f"{name}: selects no metric")
    kept: set[str] | None = None
    for sel in expr.selectors:
        series = _series(samples, sel.metric)
        if not series:
            problems.append(f"{name}: {sel.metric} is not in the exposition")
            continue
        labels = set().union(*series)
        for label, op, val in sel.matchers:
            values = {s[label] for s in series if label in s}
            if not values:
                problems.append(f"{name}: {sel.metric} has no label {label!r}")
            elif op in ("=~", "!~"):
                for alt in val.split("|"):
                    if alt not in values:
                        problems.append(f"{name}: {sel.metric}{{{label}{op}...}}: {alt!r} "
                                        f"is not one of its values {sorted(values)}")
            elif val not in values:
                problems.append(f"{name}: {sel.metric}{{{label}{op}{val!r}}}: not one of "
                                f"its values {sorted(values)}")
        for group in expr.by:
            for label in group:
                if label not in labels:
                    problems.append(f"{name}: by ({label}) but {sel.metric} has no such label")
        mine = labels if not expr.by else set(expr.by[0]) - {"le"}
        kept = mine if kept is None else kept & mine
    for key, text in (rule.get("annotations") or {}).items():
        for label in re.findall(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)", str(text)):
            if kept is not None and label not in kept:
                problems.append(f"{name}: annotation {key} uses $labels.{label}, which the "
                                f"alert's series do not keep (they keep {sorted(kept)})")
    duration = rule.get("for")
    if duration is not None and not re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", str(duration)):
        problems.append(f"{name}: for: {duration!r} is not a Prometheus duration")
    return problems


def check_rules_file(doc: Any, samples: Samples) -> tuple[int, list[str]]:
    """(number of alerting rules, problems) of a loaded rules file."""
    problems: list[str] = []
    n = 0
    if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list):
        return 0, ["the file has no list of groups"]
    for group in doc["groups"]:
        for rule in group.get("rules") or []:
            if "alert" not in rule or "expr" not in rule:
                problems.append(f"group {group.get('name')}: a rule without alert or expr: {rule}")
                continue
            n += 1
            problems += check_rule(rule, samples)
    return n, problems
