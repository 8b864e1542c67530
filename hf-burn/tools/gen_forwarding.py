"""Generates hf-burn/src/fast/forward.rs: the operation traits of burn 0.21's backend
for `FastCpu<B>`, every method passed through to `B` except those `fast::kernels`
replaces (OVERRIDES below).

    python3 hf-burn/tools/gen_forwarding.py ~/.cargo/registry/src/*/burn-backend-0.21.0 \
        > hf-burn/src/fast/forward.rs && cargo fmt

`FastCpu<B>`'s tensor types are `B`'s own, so a pass-through is `B::op(args)`. Default
methods are passed through too, so that `B`'s specialised versions (burn-flex
overrides many defaults) are the ones that run. Methods whose signature carries a
struct generic over the backend (pooling results, quantization parameters) are
rebuilt field by field; the few that would need more are left to burn's defaults.
Re-run it when burn is upgraded; the compiler then points at anything it missed.
"""

import re
import sys

TRAITS = [
    ("src/backend/ops/tensor.rs", "FloatTensorOps"),
    ("src/backend/ops/int_tensor.rs", "IntTensorOps"),
    ("src/backend/ops/bool_tensor.rs", "BoolTensorOps"),
    ("src/backend/ops/activation.rs", "ActivationOps"),
    ("src/backend/ops/modules/base.rs", "ModuleOps"),
    ("src/backend/ops/qtensor.rs", "QTensorOps"),
]

# Replaced by `super::kernels`: called as `kernels::NAME::<B>(args)`.
OVERRIDES = {
    "float_tanh", "float_exp", "float_log", "float_log1p",
    "sigmoid", "log_sigmoid",
}

# Structs generic over the backend whose fields are all tensors: rebuilt by field
# (the pooling and convolution results are read from modules/base.rs).
STRUCT_FIELDS = {"QuantizationParametersPrimitive": ["scales"]}

PRIMITIVE = ("match {x} {{ TensorPrimitive::Float(t) => TensorPrimitive::Float(t), "
             "TensorPrimitive::QFloat(q) => TensorPrimitive::QFloat(q) }}")


def strip_comments(text):
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("//") or s.startswith("#["):
            continue
        out.append(re.sub(r"\s//.*$", "", line))
    return "\n".join(out)


def block_after(text, start):
    """The text between the brace at or after `start` and its match."""
    i = text.index("{", start)
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j], j + 1
    raise ValueError("unbalanced braces")


def parse_structs(text):
    for m in re.finditer(r"pub struct (\w+)<B: Backend> \{", text):
        body, _ = block_after(text, m.end() - 1)
        fields = re.findall(r"pub (\w+):", body)
        STRUCT_FIELDS[m.group(1)] = fields


def methods(body):
    """(async, signature text) of every method declared in a trait body."""
    i, n = 0, len(body)
    while i < n:
        m = re.compile(r"\b(async\s+)?fn\s+\w+").search(body, i)
        if not m:
            return
        j = m.end()
        depth = 0
        while j < n:
            c = body[j]
            if body.startswith("->", j):
                j += 2
                continue
            if c in "(<[":
                depth += 1
            elif c in ")>]":
                depth -= 1
            elif depth == 0 and c in ";{":
                break
            j += 1
        signature = body[m.start():j].strip()
        if body[j] == "{":
            _, j = block_after(body, j)
        else:
            j += 1
        yield bool(m.group(1)), signature
        i = j


def parse_signature(sig):
    """Name, parameter list and return type of `fn name(params) -> ret`."""
    name = re.match(r"(?:async\s+)?fn\s+(\w+)", sig).group(1)
    open_at = sig.index("(")
    depth = 0
    for k in range(open_at, len(sig)):
        if sig[k] == "(":
            depth += 1
        elif sig[k] == ")":
            depth -= 1
            if depth == 0:
                break
    rest = sig[k + 1:].strip()
    ret = rest[2:].strip() if rest.startswith("->") else ""
    return name, sig[open_at + 1:k], ret


def split_top(text, sep=","):
    parts, depth, cur = [], 0, ""
    k = 0
    while k < len(text):
        c = text[k]
        if text.startswith("->", k):
            cur += "->"
            k += 2
            continue
        if c in "(<[":
            depth += 1
        elif c in ")>]":
            depth -= 1
        if c == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
        k += 1
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def to_self(text):
    return re.sub(r"\bB\b", "Self", text)


def rebuild(expr, ty):
    """`expr` of `B`'s version of `ty` converted to `Self`'s, or None if unsupported."""
    m = re.fullmatch(r"(\w+)<B>", ty)
    if not m:
        return expr
    name = m.group(1)
    if name in ("FloatTensor", "IntTensor", "BoolTensor", "QuantizedTensor", "Device", "FloatElem", "IntElem"):
        return expr
    if name == "TensorPrimitive":
        return PRIMITIVE.format(x=expr)
    if name in STRUCT_FIELDS:
        fields = ", ".join(f"{f}: r.{f}" for f in STRUCT_FIELDS[name])
        return f"{{ let r = {expr}; {name} {{ {fields} }} }}"
    return None


def convert_arg(name, ty):
    """The argument passed to `B` for a parameter of type `ty`, or None."""
    m = re.fullmatch(r"(\w+)<B>", ty.strip())
    if not m or m.group(1) in ("FloatTensor", "IntTensor", "BoolTensor", "QuantizedTensor"):
        return name
    struct = m.group(1)
    if struct == "TensorPrimitive":
        return PRIMITIVE.format(x=name)
    if struct in STRUCT_FIELDS:
        fields = ", ".join(f"{f}: {name}.{f}" for f in STRUCT_FIELDS[struct])
        return f"{struct} {{ {fields} }}"
    return None


def generate(root):
    out = []
    for path, trait in TRAITS:
        text = strip_comments(open(f"{root}/{path}").read())
        parse_structs(text)
        start = re.search(rf"pub trait {trait}<B: Backend>[^{{]*\{{", text)
        body, _ = block_after(text, start.end() - 1)
        impl = [f"impl<B: Backend> {trait}<Self> for FastCpu<B> {{"]
        for is_async, sig in methods(body):
            name, params, ret = parse_signature(sig)
            ret = re.sub(r"\s+", " ", ret)
            args, skip = [], False
            for p in split_top(params):
                pname, ptype = p.split(":", 1)
                pname = pname.replace("mut ", "").strip()
                a = convert_arg(pname, ptype)
                if a is None:
                    skip = True
                args.append(a or pname)
            if name in OVERRIDES:
                call = f"kernels::{name}::<B>({', '.join(args)})"
            else:
                call = f"B::{name}({', '.join(args)})"
            if is_async:
                call += ".await"
            result = rebuild(call, ret) if ret else call
            if skip or result is None:
                impl.append(f"    // {name}: burn's default (its signature needs more than a field-by-field rebuild)")
                continue
            head = to_self(sig.replace("async fn", "async fn", 1))
            head = re.sub(r"\bmut\s+(\w+):", r"\1:", head)
            head = head.replace("crate::", "burn_backend::")
            impl.append(f"    {head} {{\n        {result}\n    }}\n")
        impl.append("}\n")
        out.append("\n".join(impl))
    header = '''//! `FastCpu<B>`'s operation traits: everything passes through to `B`, except the
//! operations `super::kernels` replaces. Generated by `hf-burn/tools/gen_forwarding.py`
//! from burn-backend 0.21.0's trait definitions: edit the generator, not this file.

#![allow(clippy::too_many_arguments, unused_variables)]

use burn_backend::ops::*;
use burn_backend::tensor::quantization::*;
use burn_backend::tensor::*;
use burn_backend::{Backend, Distribution, ExecutionError, Scalar, TensorData, TensorPrimitive};
use burn_std::quantization::QuantScheme;
use burn_std::{BoolDType, FloatDType, IntDType, Shape, Slice};
use core::future::Future;
use core::ops::Range;

use super::{kernels, FastCpu};
'''
    return header + "\n" + "\n".join(out)


if __name__ == "__main__":
    print(generate(sys.argv[1]))
