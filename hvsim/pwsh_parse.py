"""A parser for the small PowerShell subset hvsim runs (hvsim.pwsh_run).

Clients and test suites send short scripts: literals and arrays, variables and
assignments, strings with $var and $(...) inside, hashtables and
[PSCustomObject] casts, if/while, throw, begin/process/end blocks, param()
blocks with attributes, and pipelines of commands with literal arguments. This
module turns such text into a small syntax tree. Anything outside the subset
raises Unsupported naming the construct, so the caller can refuse it as
"not modelled" instead of guessing.

The grammar follows about_Parsing (expression mode and argument mode),
about_Operator_Precedence and about_Quoting_Rules, reduced to what is listed
above.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any


class Unsupported(Exception):
    """The text uses PowerShell outside the subset; `construct` names what."""

    def __init__(self, construct: str) -> None:
        super().__init__(construct)
        self.construct = construct


class ParseError(Exception):
    """The text is not PowerShell (a parser error Windows would report too)."""


# ------------------------------------------------------------------ tree


@dataclasses.dataclass
class Const:
    value: Any


@dataclasses.dataclass
class Expandable:
    """A double-quoted string: literal text and embedded expressions."""

    parts: list[Any]


@dataclasses.dataclass
class Var:
    name: str
    scope: str = ""  # "", "global", "script", "local", "env"


@dataclasses.dataclass
class ArrayLit:
    items: list[Any]


@dataclasses.dataclass
class HashLit:
    pairs: list[tuple[Any, Any]]


@dataclasses.dataclass
class SubExpr:
    """$(...), @(...) or (...): statements whose output is the value."""

    body: list[Any]
    array: bool = False  # @(...) always gives an array


@dataclasses.dataclass
class Unary:
    op: str
    operand: Any


@dataclasses.dataclass
class Binary:
    op: str
    left: Any
    right: Any


@dataclasses.dataclass
class Member:
    target: Any
    name: str
    static: bool = False
    args: list[Any] | None = None  # a method call when not None


@dataclasses.dataclass
class Index:
    target: Any
    index: Any


@dataclasses.dataclass
class Cast:
    type_name: str
    operand: Any


@dataclasses.dataclass
class TypeLit:
    type_name: str


@dataclasses.dataclass
class ScriptBlockLit:
    text: str
    script: Any  # Script


@dataclasses.dataclass
class CmdArg:
    name: str | None  # a -Parameter, without the dash
    value: Any = None  # an expression, or None for a switch
    colon: bool = False


@dataclasses.dataclass
class Command:
    name: str
    args: list[CmdArg]


@dataclasses.dataclass
class Pipeline:
    elements: list[Any]  # the first may be an expression, the rest are Commands


@dataclasses.dataclass
class Assign:
    target: Any
    op: str  # "=", "+=", "-=", "*=", "++", "--"
    value: Any = None  # a statement


@dataclasses.dataclass
class If:
    clauses: list[tuple[Any, list[Any]]]
    otherwise: list[Any] | None


@dataclasses.dataclass
class While:
    condition: Any
    body: list[Any]


@dataclasses.dataclass
class Throw:
    value: Any | None


@dataclasses.dataclass
class Return:
    value: Any | None


@dataclasses.dataclass
class Param:
    name: str
    default: Any = None
    from_pipeline: bool = False
    type_name: str | None = None


@dataclasses.dataclass
class Script:
    params: list[Param]
    begin: list[Any] | None
    process: list[Any] | None
    end: list[Any] | None
    named_blocks: bool


# ------------------------------------------------------------------ scanner

_MULTIPLIERS = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4, "pb": 1024**5}
_NUMBER = re.compile(
    r"(0x[0-9a-f]+|(?:\d+(?:\.\d+)?|\.\d+)(?:e[+-]?\d+)?)(l|d)?(kb|mb|gb|tb|pb)?(?![\w-])", re.I
)
_OPERATORS = (
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "like",
    "notlike",
    "match",
    "notmatch",
    "contains",
    "notcontains",
    "in",
    "notin",
    "ceq",
    "cne",
    "ieq",
    "ine",
    "and",
    "or",
    "xor",
    "not",
    "f",
    "replace",
    "join",
    "split",
    "is",
    "isnot",
    "as",
    "band",
    "bor",
)
_COMPARISON = {
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "like",
    "notlike",
    "match",
    "notmatch",
    "contains",
    "notcontains",
    "in",
    "notin",
    "ceq",
    "cne",
    "ieq",
    "ine",
    "is",
    "isnot",
    "replace",
    "join",
    "split",
    "as",
}
_KEYWORDS = {
    "begin",
    "process",
    "end",
    "if",
    "elseif",
    "else",
    "while",
    "for",
    "foreach",
    "do",
    "switch",
    "function",
    "filter",
    "workflow",
    "try",
    "catch",
    "finally",
    "trap",
    "throw",
    "return",
    "break",
    "continue",
    "param",
    "class",
    "enum",
    "using",
    "data",
    "exit",
}
_ARG_END = set(" \t\r\n;|)}&")
_DASHES = "-\u2013\u2014\u2015"
MAX_DEPTH = 60


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.n = len(text)
        self.depth = 0
        self.no_comma = False  # inside a method's argument list

    # -- low level -------------------------------------------------------------

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < self.n else ""

    def at(self, text: str, case: bool = False) -> bool:
        part = self.s[self.i : self.i + len(text)]
        return part == text if case else part.lower() == text.lower()

    def skip(self, newlines: bool = False) -> None:
        """Skip blanks, comments and line continuations (and newlines if asked)."""
        while self.i < self.n:
            c = self.s[self.i]
            if c in " \t\f\v\u00a0" or (newlines and c in "\r\n"):
                self.i += 1
            elif c == "`" and self.peek(1) in "\r\n":
                self.i += 2
                if self.s[self.i - 1] == "\r" and self.peek() == "\n":
                    self.i += 1
            elif c == "#":
                while self.i < self.n and self.s[self.i] not in "\r\n":
                    self.i += 1
            elif c == "<" and self.peek(1) == "#":
                end = self.s.find("#>", self.i + 2)
                if end < 0:
                    raise ParseError("The block comment is not closed: '#>' is missing.")
                self.i = end + 2
            else:
                break

    def expect(self, ch: str, newlines: bool = True) -> None:
        self.skip(newlines)
        if self.peek() != ch:
            found = self.peek() or "the end of the script"
            raise ParseError(f"Missing '{ch}' at position {self.i} (found {found!r}).")
        self.i += 1

    def word(self) -> str:
        m = re.compile(r"[A-Za-z_][\w-]*").match(self.s, self.i)
        return m.group(0) if m else ""

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Unsupported("nesting deeper than 60 levels")

    # -- script ----------------------------------------------------------------

    def script(self, closing: str = "") -> Script:
        self.skip(True)
        params: list[Param] = []
        while self.peek() == "[":
            # [CmdletBinding()] and friends before param(): accepted, not honoured.
            # A type at the start of a statement ([IO.Path]::...) is not one.
            save = self.i
            self.attribute()
            self.skip(True)
            if self.peek() != "[" and not (
                self.word().lower() == "param" and self._after_word_is("(")
            ):
                self.i = save
                break
        if self.word().lower() == "param" and self._after_word_is("("):
            self.i += 5
            params = self.param_block()
        self.skip(True)
        name = self.word().lower()
        if name in ("begin", "process", "end") and self._after_word_is("{"):
            blocks: dict[str, list[Any]] = {}
            while True:
                self.skip(True)
                while self.peek() == ";":
                    self.i += 1
                    self.skip(True)
                name = self.word().lower()
                if name not in ("begin", "process", "end"):
                    break
                if name in blocks:
                    raise ParseError(f"The script has two {name} blocks.")
                self.i += len(name)
                self.expect("{")
                blocks[name] = self.statements("}")
                self.expect("}")
            self._done(closing)
            script = Script(
                params, blocks.get("begin"), blocks.get("process"), blocks.get("end"), True
            )
        else:
            body = self.statements(closing)
            self._done(closing)
            script = Script(params, None, None, body, False)
        return script

    def _after_word_is(self, ch: str) -> bool:
        j = self.i + len(self.word())
        while j < self.n and self.s[j] in " \t\r\n":
            j += 1
        return j < self.n and self.s[j] == ch

    def _done(self, closing: str) -> None:
        self.skip(True)
        if closing:
            if self.peek() != closing:
                raise ParseError(f"Missing closing '{closing}'.")
        elif self.i < self.n:
            raise ParseError(f"Unexpected token {self.s[self.i : self.i + 20]!r}.")

    def attribute(self) -> str:
        """[Name(...)] or [type]: the name; arguments are skipped, balanced."""
        start = self.i
        depth = 0
        while self.i < self.n:
            c = self.s[self.i]
            self.i += 1
            if c == "[":
                depth += 1
            elif c == "]":
                depth -= 1
                if depth == 0:
                    break
        if depth:
            raise ParseError("Missing ']' in an attribute or type name.")
        return self.s[start + 1 : self.i - 1].strip()

    def param_block(self) -> list[Param]:
        self.expect("(")
        params: list[Param] = []
        while True:
            self.skip(True)
            if self.peek() == ")":
                self.i += 1
                return params
            from_pipe = False
            type_name = None
            while self.peek() == "[":
                attr = self.attribute()
                if re.match(r"parameter\s*\(", attr, re.I):
                    from_pipe = bool(
                        re.search(r"ValueFromPipeline\b(?!ByPropertyName)", attr, re.I)
                    )
                elif "(" not in attr:
                    type_name = attr
                self.skip(True)
            if self.peek() != "$":
                raise ParseError("A parameter name must start with '$'.")
            var = self.variable()
            default = None
            self.skip(True)
            if self.peek() == "=":
                self.i += 1
                default = self.expression(newlines=True)
            params.append(Param(var.name, default, from_pipe, type_name))
            self.skip(True)
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != ")":
                raise ParseError("Missing ',' or ')' in the param block.")

    # -- statements ------------------------------------------------------------

    def statements(self, closing: str) -> list[Any]:
        out: list[Any] = []
        while True:
            self.skip(True)
            while self.peek() == ";":
                self.i += 1
                self.skip(True)
            if self.i >= self.n or (closing and self.peek() == closing):
                return out
            out.append(self.statement())
            self.skip()
            c = self.peek()
            if c in (";", "\r", "\n"):
                continue
            if c == "" or (closing and c == closing):
                return out
            raise ParseError(f"Unexpected token {self.s[self.i : self.i + 20]!r} in a statement.")

    def statement(self) -> Any:
        self.enter()
        try:
            return self._statement()
        finally:
            self.depth -= 1

    def _statement(self) -> Any:
        kw = self.word().lower()
        if kw in _KEYWORDS:
            if kw == "if":
                return self.if_statement()
            if kw == "while":
                return self.while_statement()
            if kw == "throw":
                self.i += 5
                self.skip()
                if self.peek() in ("", ";", "\r", "\n", "}", ")"):
                    return Throw(None)
                return Throw(self.pipeline())
            if kw == "return":
                self.i += 6
                self.skip()
                if self.peek() in ("", ";", "\r", "\n", "}", ")"):
                    return Return(None)
                return Return(self.pipeline())
            raise Unsupported(f"the '{kw}' keyword")
        # Assignment: a variable (or its member / index) followed by = += -= ++ --
        save = self.i
        if self.peek() == "$" or (self.peek() == "[" and self._cast_then_variable()):
            target = self.unary()
            self.skip()
            for op in ("++", "--", "+=", "-=", "*=", "/=", "="):
                if self.at(op) and not (op == "=" and self.peek(1) == "="):
                    if isinstance(target, Cast):
                        target = target.operand
                    if not isinstance(target, Var | Member | Index):
                        raise ParseError("The assignment expression is not valid.")
                    self.i += len(op)
                    if op in ("++", "--"):
                        return Assign(target, op)
                    self.skip(True)
                    return Assign(target, op, self.statement())
            self.i = save
        if self.peek() == "[" and re.compile(r"\[[\w.]+\]::\w+\s*=(?!=)").match(self.s, self.i):
            m = re.compile(r"\[([\w.]+)\]::(\w+)").match(self.s, self.i)
            assert m is not None
            raise Unsupported(f"assigning to the .NET member [{m.group(1)}]::{m.group(2)}")
        return self.pipeline()

    def _cast_then_variable(self) -> bool:
        m = re.compile(r"\[[\w.]+(\[\])?\]\s*\$").match(self.s, self.i)
        return m is not None

    def block(self) -> list[Any]:
        self.expect("{")
        body = self.statements("}")
        self.expect("}")
        return body

    def condition(self) -> Any:
        self.expect("(")
        self.skip(True)
        value = self.pipeline(newlines=True)
        self.expect(")")
        return value

    def if_statement(self) -> If:
        self.i += 2
        clauses = [(self.condition(), self.block())]
        otherwise = None
        while True:
            save = self.i
            self.skip(True)
            kw = self.word().lower()
            if kw == "elseif":
                self.i += 6
                clauses.append((self.condition(), self.block()))
            elif kw == "else":
                self.i += 4
                otherwise = self.block()
                break
            else:
                self.i = save
                break
        return If(clauses, otherwise)

    def while_statement(self) -> While:
        self.i += 5
        return While(self.condition(), self.block())

    # -- pipelines and commands -------------------------------------------------

    def pipeline(self, newlines: bool = False) -> Pipeline:
        elements: list[Any] = []
        while True:
            self.skip()
            if not elements and not self._command_start():
                elements.append(self.expression(newlines=newlines))
            else:
                elements.append(self.command())
            self.skip(newlines)
            if self.peek() == "|" and self.peek(1) != "|":
                self.i += 1
                self.skip(True)
                continue
            return Pipeline(elements)

    def _command_start(self) -> bool:
        c = self.peek()
        if c == "&" or (c == "." and self.peek(1) in " \t"):
            raise Unsupported("invoking a command by '&' or '.' (call operators)")
        if c.isalpha() or c == "_":
            w = self.word()
            # A number with a suffix (20KB) is not a command; neither is $true.
            return not re.fullmatch(r"\d.*", w)
        return False

    def command(self) -> Command:
        if not self._command_start():
            raise ParseError(
                f"Expressions are only allowed as the first element of a pipeline "
                f"(at {self.s[self.i : self.i + 20]!r})."
            )
        m = re.compile(r"[\w.\-:\\]+").match(self.s, self.i)
        assert m is not None
        name = m.group(0)
        self.i = m.end()
        args: list[CmdArg] = []
        while True:
            self.skip()
            c = self.peek()
            if c == "" or c in ";|)}\r\n" or (c == "&" and self.peek(1) == "&"):
                return Command(name, args)
            if c in _DASHES and (self.peek(1).isalpha() or self.peek(1) == "_"):
                pm = re.compile(r"[" + _DASHES + r"]([A-Za-z_][\w]*)(:?)").match(self.s, self.i)
                assert pm is not None
                self.i = pm.end()
                if pm.group(2):
                    self.skip()
                    args.append(CmdArg(pm.group(1), self.argument(), True))
                else:
                    args.append(CmdArg(pm.group(1)))
                continue
            if c == "@" and self.peek(1).isalpha():
                raise Unsupported("splatting (@name)")
            if c in "<>" or (c == "2" and self.peek(1) == ">"):
                raise Unsupported("redirection operators")
            args.append(CmdArg(None, self.argument()))

    def argument(self) -> Any:
        """One argument in argument mode; commas make an array."""
        items = [self._argument_item()]
        while True:
            save = self.i
            self.skip()
            if self.peek() == ",":
                self.i += 1
                self.skip(True)
                items.append(self._argument_item())
            else:
                self.i = save
                break
        return items[0] if len(items) == 1 else ArrayLit(items)

    def _argument_item(self) -> Any:
        c = self.peek()
        if c in "'\"$(@[{" or (c == "-" and self.peek(1).isdigit()):
            value = self.postfix(self.primary())
            return value
        m = _NUMBER.match(self.s, self.i)
        if m and (m.end() >= self.n or self.s[m.end()] in _ARG_END or self.s[m.end()] == ","):
            self.i = m.end()
            return Const(_number(m))
        # A bare word: text up to a blank or a special character.
        start = self.i
        while self.i < self.n and self.s[self.i] not in _ARG_END and self.s[self.i] not in ",":
            if self.s[self.i] == "`" and self.i + 1 < self.n:
                self.i += 2
                continue
            if self.s[self.i] in "$\"'(":
                raise Unsupported("a bare word argument with an expression inside")
            self.i += 1
        text = self.s[start : self.i]
        if not text:
            raise ParseError(f"Unexpected token {self.s[self.i : self.i + 20]!r}.")
        return Const(re.sub(r"`(.)", r"\1", text))

    # -- expressions -----------------------------------------------------------

    def expression(self, newlines: bool = False) -> Any:
        self.enter()
        try:
            return self.logical(newlines)
        finally:
            self.depth -= 1

    def _operator(self, names: set[str] | tuple[str, ...], newlines: bool) -> str | None:
        save = self.i
        self.skip(newlines)
        if self.peek() in _DASHES:
            m = re.compile(r"[" + _DASHES + r"]([a-z]+)(?![\w])", re.I).match(self.s, self.i)
            if m and m.group(1).lower() in names:
                self.i = m.end()
                self.skip(True)
                return m.group(1).lower()
        self.i = save
        return None

    def logical(self, newlines: bool) -> Any:
        left = self.comparison(newlines)
        while (op := self._operator(("and", "or", "xor"), newlines)) is not None:
            left = Binary(op, left, self.comparison(newlines))
        return left

    def comparison(self, newlines: bool) -> Any:
        left = self.additive(newlines)
        while (op := self._operator(_COMPARISON, newlines)) is not None:
            left = Binary(op, left, self.additive(newlines))
        return left

    def _symbol(self, symbols: tuple[str, ...], newlines: bool) -> str | None:
        save = self.i
        self.skip(newlines)
        c = self.peek()
        for sym in symbols:
            if c == sym and not (sym == "-" and (self.peek(1).isalpha() or self.peek(1) == "-")):
                if self.peek(1) == "=" or (sym in "+-" and self.peek(1) == sym):
                    break
                self.i += 1
                self.skip(True)
                return sym
        self.i = save
        return None

    def additive(self, newlines: bool) -> Any:
        left = self.multiplicative(newlines)
        while (op := self._symbol(("+", "-"), newlines)) is not None:
            left = Binary(op, left, self.multiplicative(newlines))
        return left

    def multiplicative(self, newlines: bool) -> Any:
        left = self.format_op(newlines)
        while (op := self._symbol(("*", "/", "%"), newlines)) is not None:
            left = Binary(op, left, self.format_op(newlines))
        return left

    def format_op(self, newlines: bool) -> Any:
        left = self.range_op(newlines)
        while self._operator(("f",), newlines) is not None:
            left = Binary("f", left, self.range_op(newlines))
        return left

    def range_op(self, newlines: bool) -> Any:
        left = self.array(newlines)
        save = self.i
        self.skip(newlines)
        if self.at(".."):
            self.i += 2
            self.skip(True)
            return Binary("..", left, self.array(newlines))
        self.i = save
        return left

    def array(self, newlines: bool) -> Any:
        first = self.unary()
        if self.no_comma:
            return first
        items = [first]
        while True:
            save = self.i
            self.skip(newlines)
            if self.peek() == ",":
                self.i += 1
                self.skip(True)
                items.append(self.unary())
            else:
                self.i = save
                break
        return first if len(items) == 1 else ArrayLit(items)

    def unary(self) -> Any:
        self.skip()
        c = self.peek()
        if c == "!":
            self.i += 1
            return Unary("not", self.unary())
        if c in _DASHES:
            m = re.compile(r"[" + _DASHES + r"](not)(?![\w])", re.I).match(self.s, self.i)
            if m:
                self.i = m.end()
                return Unary("not", self.unary())
            if self.peek(1) in _DASHES:
                raise Unsupported("the prefix '--' operator")
            self.i += 1
            return Unary("-", self.unary())
        if c == "+" and self.peek(1) != "+":
            self.i += 1
            return Unary("+", self.unary())
        if c == ",":
            self.i += 1
            return ArrayLit([self.unary()])
        if c == "[" and not self.at("[ordered]"):
            save = self.i
            type_name = self.attribute()
            self.skip()
            if self.at("::"):
                self.i = save
                return self.postfix(self.primary())
            if self.peek() and self.peek() not in ");,}|\r\n" and not self.at("-"):
                return Cast(type_name, self.unary())
            self.i = save
        return self.postfix(self.primary())

    def postfix(self, value: Any) -> Any:
        while True:
            c = self.peek()
            if c == "." and (self.peek(1).isalpha() or self.peek(1) == "_"):
                self.i += 1
                value = self._member(value, static=False)
            elif c == ":" and self.peek(1) == ":":
                self.i += 2
                value = self._member(value, static=True)
            elif c == "[":
                self.i += 1
                self.skip(True)
                index = self.expression(newlines=True)
                self.expect("]")
                value = Index(value, index)
            else:
                return value

    def _member(self, target: Any, static: bool) -> Member:
        name = self.word()
        if not name:
            raise ParseError("Missing a property name after '.'.")
        self.i += len(name)
        if self.peek() == "(":
            self.i += 1
            args: list[Any] = []
            self.skip(True)
            if self.peek() != ")":
                while True:
                    self.skip(True)
                    args.append(self.logical_no_comma())
                    self.skip(True)
                    if self.peek() == ",":
                        self.i += 1
                        continue
                    break
            self.expect(")")
            return Member(target, name, static, args)
        return Member(target, name, static)

    def logical_no_comma(self) -> Any:
        # Method arguments are separated by commas: parse each below the array
        # level (a comma inside brackets of the argument is an array again).
        saved, self.no_comma = self.no_comma, True
        try:
            return self.logical(True)
        finally:
            self.no_comma = saved

    def primary(self) -> Any:
        saved, self.no_comma = self.no_comma, False
        try:
            return self._primary()
        finally:
            self.no_comma = saved

    def _primary(self) -> Any:
        self.skip()
        c = self.peek()
        if c == "'":
            return Const(self.single_quoted())
        if c == '"':
            return self.double_quoted()
        if c == "@" and self.peek(1) in "'\"":
            return self.here_string()
        if c == "$":
            if self.peek(1) == "(":
                self.i += 2
                body = self.statements(")")
                self.expect(")")
                return SubExpr(body)
            return self.variable()
        if c == "@" and self.peek(1) == "(":
            self.i += 2
            body = self.statements(")")
            self.expect(")")
            return SubExpr(body, array=True)
        if c == "@" and self.peek(1) == "{":
            return self.hashtable()
        if c == "[" and self.at("[ordered]"):
            self.i += len("[ordered]")
            self.skip()
            return self.hashtable()
        if c == "(":
            self.i += 1
            self.skip(True)
            if self.peek() == ")":
                raise ParseError("An expression was expected after '('.")
            body = [self.statement()]
            self.expect(")")
            return SubExpr(body)
        if c == "{":
            return self.script_block()
        if c == "[":
            return TypeLit(self.attribute())
        m = _NUMBER.match(self.s, self.i)
        if m:
            self.i = m.end()
            return Const(_number(m))
        if c.isalpha():
            raise Unsupported(f"the bare word '{self.word() or c}' in an expression")
        raise ParseError(f"Unexpected token {self.s[self.i : self.i + 20]!r} in an expression.")

    def script_block(self) -> ScriptBlockLit:
        start = self.i
        self.i += 1
        inner = _Parser(self.s)
        inner.i = self.i
        inner.depth = self.depth
        script = inner.script("}")
        self.i = inner.i + 1
        return ScriptBlockLit(self.s[start + 1 : self.i - 1], script)

    def hashtable(self) -> HashLit:
        if self.peek() == "@":
            self.i += 1
        self.expect("{")
        pairs: list[tuple[Any, Any]] = []
        while True:
            self.skip(True)
            while self.peek() == ";":
                self.i += 1
                self.skip(True)
            if self.peek() == "}":
                self.i += 1
                return HashLit(pairs)
            if self.peek() in "'\"":
                key: Any = self.primary()
            elif self.peek() == "$" or self.peek() == "(":
                key = self.unary()
            else:
                m = re.compile(r"[\w.\-]+").match(self.s, self.i)
                if not m:
                    raise ParseError("Missing a key in the hash literal.")
                self.i = m.end()
                key = Const(m.group(0))
            self.expect("=", newlines=False)
            self.skip(True)
            pairs.append((key, self.statement()))
            self.skip()
            if self.peek() not in (";", "\r", "\n", "}"):
                raise ParseError("Missing ';' or a new line after a hash literal entry.")

    def variable(self) -> Var:
        self.i += 1  # $
        if self.peek() == "{":
            end = self.s.find("}", self.i)
            if end < 0:
                raise ParseError("Missing '}' in a ${...} variable.")
            raw = self.s[self.i + 1 : end]
            self.i = end + 1
        else:
            m = re.compile(r"(?:[A-Za-z_]\w*:)?[\w?]+|\$|\^|_").match(self.s, self.i)
            if not m:
                raise ParseError("A variable name is missing after '$'.")
            raw = m.group(0)
            self.i = m.end()
        scope, _, name = raw.rpartition(":")
        scope = scope.lower()
        if scope and scope not in (
            "global",
            "script",
            "local",
            "env",
            "private",
            "using",
            "variable",
        ):
            raise Unsupported(f"the '{scope}:' drive in a variable path")
        if scope == "using":
            raise Unsupported("$using: variables")
        if scope == "variable":
            scope = ""
        return Var(name, scope)

    # -- strings ---------------------------------------------------------------

    def single_quoted(self) -> str:
        self.i += 1
        out = []
        while self.i < self.n:
            c = self.s[self.i]
            if c in "'\u2018\u2019":
                if self.peek(1) in "'\u2018\u2019" and self.peek(1) != "":
                    out.append("'")
                    self.i += 2
                    continue
                self.i += 1
                return "".join(out)
            out.append(c)
            self.i += 1
        raise ParseError("The string is missing the terminator: '.")

    def double_quoted(self) -> Expandable:
        self.i += 1
        return self._expandable('"')

    def here_string(self) -> Any:
        quote = self.peek(1)
        self.i += 2
        nl = self.s.find("\n", self.i)
        if nl < 0:
            raise ParseError("A here-string must start with a new line.")
        end = self.s.find("\n" + quote + "@", nl)
        if end < 0:
            raise ParseError("The here-string is missing its terminator.")
        body = self.s[nl + 1 : end].rstrip("\r")
        self.i = end + 3
        if quote == "'":
            return Const(body)
        sub = _Parser(body + '"')
        return sub._expandable('"', here=True)

    def _expandable(self, quote: str, here: bool = False) -> Expandable:
        parts: list[Any] = []
        buf: list[str] = []
        escapes = {
            "n": "\n",
            "r": "\r",
            "t": "\t",
            "0": "\0",
            "a": "\a",
            "b": "\b",
            "e": "\x1b",
            "f": "\f",
            "v": "\v",
        }
        while self.i < self.n:
            c = self.s[self.i]
            if c == "`" and self.i + 1 < self.n:
                nxt = self.s[self.i + 1]
                buf.append(escapes.get(nxt, nxt))
                self.i += 2
                continue
            if c == quote and not here:
                if self.peek(1) == quote:
                    buf.append(quote)
                    self.i += 2
                    continue
                self.i += 1
                break
            if c == quote and here and self.i == self.n - 1:
                self.i += 1
                break
            if c == "$" and self.peek(1) == "(":
                if buf:
                    parts.append("".join(buf))
                    buf = []
                self.i += 2
                body = self.statements(")")
                self.expect(")")
                parts.append(SubExpr(body))
                continue
            if c == "$" and (self.peek(1).isalnum() or self.peek(1) in "_{?^$"):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(self.variable())
                continue
            buf.append(c)
            self.i += 1
        else:
            raise ParseError('The string is missing the terminator: ".')
        if buf:
            parts.append("".join(buf))
        return Expandable(parts)


def _number(m: re.Match[str]) -> Any:
    text, kind, mult = m.group(1), (m.group(2) or "").lower(), (m.group(3) or "").lower()
    if text.lower().startswith("0x"):
        value: Any = int(text, 16)
    elif kind == "d" or any(ch in text.lower() for ch in ".e"):
        value = float(text)
    else:
        value = int(text)
    if mult:
        value = value * _MULTIPLIERS[mult]
        if isinstance(value, float) and value.is_integer() and "." not in text:
            value = int(value)
    return value


def parse(text: str) -> Script:
    """The syntax tree of a script; raises ParseError or Unsupported."""
    if len(text) > 1_000_000:
        raise Unsupported("scripts longer than 1,000,000 characters")
    return _Parser(text.lstrip("\ufeff")).script()
