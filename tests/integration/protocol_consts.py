"""The wire facts of the C headers, read at import time, so that every number and
string of the protocols is written once: in include/ota/*.h (docs/protocol.md says
what they mean). The tests' own peers (nodelib.RawClient, espota_client, the stock
and impostor devices) are written from docs/protocol.md independently of the C
code's logic, but take their numbers from here.

Names lose their OTA_ prefix: OTA_RESP_AUTH_OK is RESP_AUTH_OK,
OTA_ARDUINO_CMD_SPIFFS is ARDUINO_CMD_SPIFFS. Object-like #defines whose value is an
integer, a string (adjacent literals joined), a character, a brace list of bytes
({0x6C, ...}: bytes) or an arithmetic expression of those, and the enumerators of
enums, are read; everything else (function-like macros, types) is left out.

    import protocol_consts as P
    c.send(P.MAGIC); assert c.byte() == P.RESP_OK
"""
import ast
import os
import re

INCLUDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include", "ota")
HEADERS = ("protocol.h", "arduino_proto.h", "discovery.h", "log_proto.h", "auth.h",
           "safe_mode.h")

_values = {}      # C name -> value
RESP_NAMES = {}   # response code -> its name without OTA_RESP_ ("AUTH_OK")


def _strip_comments(text):
    # strings may hold "/*" or "//" (none of ours do outside comments, but be exact)
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            out.append(" ")
            i = n if j < 0 else j + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


_NUM = re.compile(r"\b(0[xX][0-9A-Fa-f]+|\d+)[uUlL]*\b")
_NAME = re.compile(r"\b[A-Za-z_]\w*\b")
_STR = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')


def _evaluate(expr):
    """The value of a C constant expression of literals and known names, or None."""
    expr = expr.strip()
    if not expr:
        return None
    if expr.startswith("{") and expr.endswith("}"):
        items = [_evaluate(x) for x in expr[1:-1].split(",") if x.strip()]
        if all(isinstance(x, int) and 0 <= x < 256 for x in items):
            return bytes(items)
        return None
    # replace the names outside string literals by their values
    parts, last = [], 0
    for m in _STR.finditer(expr):
        parts.append((expr[last:m.start()], False))
        parts.append((m.group(0), True))
        last = m.end()
    parts.append((expr[last:], False))
    py = []
    for text, is_str in parts:
        if is_str:
            py.append(text)
            continue
        text = _NUM.sub(lambda m: m.group(1), text)

        def name(m):
            v = _values.get(m.group(0))
            if v is None:
                raise KeyError(m.group(0))
            return repr(v)
        try:
            text = _NAME.sub(name, text)
        except KeyError:
            return None
        py.append(text.replace("/", "//"))
    return _safe_eval("".join(py))


_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b, ast.FloorDiv: lambda a, b: a // b,
        ast.LShift: lambda a, b: a << b, ast.RShift: lambda a, b: a >> b,
        ast.BitOr: lambda a, b: a | b, ast.BitAnd: lambda a, b: a & b}


def _safe_eval(py):
    """Literals and + - * / << >> | & of them only; None for anything else."""
    def ev(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, str)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        raise ValueError(py)
    try:
        return ev(ast.parse(py.strip(), mode="eval").body)
    except (SyntaxError, ValueError, TypeError):
        return None


def _read(path):
    with open(path) as f:
        text = _strip_comments(f.read()).replace("\\\n", " ")
    for line in text.splitlines():
        m = re.match(r"\s*#\s*define\s+([A-Za-z_]\w*)(\(?)\s*(.*)$", line)
        if m and not m.group(2):
            v = _evaluate(m.group(3))
            if v is not None:
                _values[m.group(1)] = v
    for body in re.findall(r"\benum\b[^{;]*\{([^}]*)\}", text, re.S):
        nxt = 0
        for item in body.split(","):
            item = item.strip()
            if not item:
                continue
            name, _, expr = item.partition("=")
            name = name.strip()
            v = _evaluate(expr) if expr.strip() else nxt
            if not isinstance(v, int):
                break
            _values[name] = v
            nxt = v + 1


for _h in HEADERS:
    _read(os.path.join(INCLUDE, _h))

for _name, _value in _values.items():
    globals()[_name[4:] if _name.startswith("OTA_") else _name] = _value
    if _name.startswith("OTA_RESP_") and isinstance(_value, int):
        RESP_NAMES[_value] = _name[len("OTA_RESP_"):]


def wire(*codes):
    """The bytes of one or more one-byte codes: wire(RESP_RECEIVE_OK, RESP_UPDATE_END_OK)."""
    return bytes(codes)


def resp_is_error(code):
    """OTA_RESP_IS_ERROR of protocol.h: the codes from RESP_ERROR_MAGIC up."""
    return code >= RESP_ERROR_MAGIC  # noqa: F821 (read from the header)


MAGIC = MAGIC_BYTES  # noqa: F821 (read from the header)
assert len(MAGIC) == MAGIC_LEN, "protocol.h: OTA_MAGIC_BYTES is not OTA_MAGIC_LEN long"  # noqa: F821


if __name__ == "__main__":  # print what was read: python3 protocol_consts.py
    for _name in sorted(_values):
        print("%s = %r" % (_name[4:] if _name.startswith("OTA_") else _name, _values[_name]))
