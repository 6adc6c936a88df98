//! A TorchScript file is code: its `code/` entries are TorchScript source that libtorch compiles
//! and runs (`forward`, and `__setstate__` while loading), and TorchScript can read and write
//! files (`torch.from_file(..., shared=True)`, `torch.save`, `torch.load`), print, or call
//! operators of whatever library is loaded. A model handed to neuroevo (`fool --classifier`,
//! `--judge`, `--generator`, `gan --fid-model`) may come from anywhere, so before libtorch sees
//! it, its archive is read here and every operator its code names is checked against the
//! tensor operators a classifier, generator or feature extractor needs (convolutions, linear
//! layers, activations, pooling, normalization, shape arithmetic...). Anything else is refused
//! in one line naming the file and the operator; `--trust-model` lifts the check for one
//! invocation (it is never stored in a run's `config.json`, which is untrusted input too).
//!
//! The check reads the source: qualified names (`torch.X`, `ops.NS.X`, `aten::X`) must be on
//! the allowlist, bare calls must be TorchScript's own builtins (`getattr`, `range`,
//! `annotate`...) or function values the printer hoists (`_0(...)`), and `__torch__.` names
//! refer to code of the same archive, which is checked too. Mobile (flatbuffer) modules carry
//! bytecode instead of source and are refused; a file that is no archive at all is left to
//! libtorch, which runs nothing and reports why it cannot load it.
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

static TRUSTED: AtomicBool = AtomicBool::new(false);

/// `--trust-model`: run models without checking their code (this process only).
pub fn set_trusted(trusted: bool) {
    TRUSTED.store(trusted, Ordering::SeqCst);
}

fn trusted() -> bool {
    TRUSTED.load(Ordering::SeqCst)
}

/// The most source a model may carry (all `code/` entries together).
const MAX_CODE_BYTES: u64 = 64 << 20;

/// Tensor operators (`torch.X`, `ops.aten.X`, `aten::X`) a model may run: pure functions of
/// tensors and numbers, without files, storage, processes or printing.
#[rustfmt::skip]
const TENSOR_OPS: &[&str] = &[
    "__and__", "__contains__", "__derive_index", "__getitem__", "__is__", "__isnot__", "__not__",
    "__or__", "__range_length", "__round_to_zero_floordiv", "__xor__", "_adaptive_avg_pool2d",
    "_cast_Float", "_convolution", "_log_softmax", "_pad_circular", "_pad_enum", "_set_item",
    "_softmax", "_unsafe_view", "_upsample_bicubic2d_aa", "_upsample_bilinear2d_aa",
    "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d", "abs",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "adaptive_max_pool3d", "add", "add_", "addmm", "all", "amax", "amin",
    "any", "append", "arange", "argmax", "argmin", "atan", "avg_pool1d", "avg_pool2d",
    "avg_pool3d", "baddbmm", "batch_norm", "bmm", "cat", "ceil", "celu", "chunk", "clamp",
    "clamp_", "clamp_max", "clamp_min", "clip", "clone", "concat", "constant_pad_nd", "contiguous",
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "copy_", "cos", "cumsum", "detach", "device", "dim", "div", "div_", "dropout", "dropout_",
    "einsum", "elu", "elu_", "embedding", "empty", "empty_like", "eq", "erf", "exp", "expand",
    "expand_as", "feature_alpha_dropout", "feature_dropout", "fill_", "flatten", "flip", "float",
    "floor", "floor_divide", "floordiv", "fmod", "format", "full", "full_like", "gather", "ge",
    "gelu", "glu", "group_norm", "gt", "hardsigmoid", "hardsigmoid_", "hardswish", "hardswish_",
    "hardtanh", "hardtanh_", "index_select", "instance_norm", "int", "is_floating_point",
    "isfinite", "isinf", "isnan", "layer_norm", "le", "leaky_relu", "leaky_relu_", "len", "lerp",
    "linear", "list", "log", "log1p", "log_sigmoid", "log_softmax", "logsigmoid", "logsumexp",
    "lt", "masked_fill", "matmul", "max", "max_pool1d", "max_pool1d_with_indices", "max_pool2d",
    "max_pool2d_with_indices", "max_pool3d", "max_pool3d_with_indices", "maximum", "mean", "min",
    "minimum", "mish", "mm", "mul", "mul_", "nan_to_num", "narrow", "ne", "neg", "new_empty",
    "new_full", "new_ones", "new_zeros", "norm", "numel", "ones", "ones_like", "pad", "permute",
    "pixel_shuffle", "pixel_unshuffle", "pow", "prelu", "prod", "reciprocal", "reflection_pad1d",
    "reflection_pad2d", "relu", "relu6", "relu_", "remainder", "repeat", "replication_pad1d",
    "replication_pad2d", "reshape", "roll", "round", "rrelu", "rsqrt", "rsub", "scalar_tensor",
    "select", "selu", "selu_", "sigmoid", "sigmoid_", "sign", "silu", "silu_", "sin", "size",
    "slice", "softmax", "softplus", "softsign", "sort", "split", "split_with_sizes", "sqrt",
    "square", "squeeze", "stack", "std", "sub", "sub_", "sum", "t", "tanh", "tanh_", "tanhshrink",
    "tensor", "threshold", "threshold_", "to", "topk", "transpose", "tril", "triu", "trunc",
    "type_as", "unbind", "unflatten", "unsqueeze", "upsample_bicubic2d", "upsample_bilinear2d",
    "upsample_linear1d", "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
    "upsample_trilinear3d", "var", "view", "view_as", "warn", "where", "zero_", "zeros",
    "zeros_like",
];

/// TorchScript's own primitives (`ops.prim.X`).
#[rustfmt::skip]
const PRIM_OPS: &[&str] = &[
    "NumToTensor", "RaiseException", "abs", "device", "dtype", "is_cuda", "max", "min", "shape",
    "unchecked_unwrap_optional",
];

/// Bare calls of TorchScript's builtins and keywords (the printer writes operators as
/// `torch.X`; `print(...)` is the one builtin with a side effect and is not here).
#[rustfmt::skip]
const BARE: &[&str] = &[
    "abs", "all", "and", "annotate", "any", "assert", "bool", "chr", "dict", "divmod", "elif",
    "enumerate", "float", "for", "getattr", "hasattr", "if", "in", "int", "is", "isinstance",
    "len", "list", "max", "min", "not", "or", "ord", "range", "return", "round", "sorted", "str",
    "sum", "tuple", "unchecked_cast", "uninitialized", "while", "zip",
];

/// Why an operator outside the allowlist is refused, when it is a known kind of side effect.
fn why(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    if ["file", "load", "save", "open", "read", "write", "path"]
        .iter()
        .any(|w| n.contains(w))
    {
        " (reads or writes files)"
    } else if n.contains("print") {
        " (prints)"
    } else if n.contains("storage") || n.contains("set_") || n.contains("data_ptr") {
        " (reaches the memory behind tensors)"
    } else if n.contains("classes") || n.starts_with("ops.") {
        " (an operator of a loaded library)"
    } else if [
        "os.",
        "sys.",
        "subprocess",
        "import",
        "exec",
        "eval",
        "system",
        "fork",
    ]
    .iter()
    .any(|w| n.contains(w))
    {
        " (reaches the process or the system)"
    } else {
        ""
    }
}

/// Checks the code of the TorchScript file `path` before it is loaded (nothing when
/// `--trust-model` was given); a usage error naming the file and the first refused operator.
pub fn check(path: &Path) -> Result<()> {
    if trusted() {
        return Ok(());
    }
    let refuse = |what: String| {
        Error::usage(format!(
            "{}: {what}; refusing to run it (--trust-model runs it anyway)",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = match zip::ZipArchive::new(std::io::BufReader::new(file)) {
        Ok(a) => a,
        Err(e) => {
            // libtorch reads zip archives (found by their end record, as here) and flatbuffer
            // (mobile) modules, marked "PTMF" at byte 4, which hold bytecode this check cannot
            // read; anything else it refuses itself, with its reason
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            let tail = &bytes[bytes.len().saturating_sub(70_000)..];
            return if bytes.get(4..8) == Some(b"PTMF") {
                Err(refuse(
                    "is a mobile (flatbuffer) module, whose code cannot be checked".into(),
                ))
            } else if bytes.starts_with(b"PK") || tail.windows(4).any(|w| w == b"PK\x05\x06") {
                Err(Error::corrupt(
                    path,
                    format!("not a TorchScript module: unreadable zip archive ({e})"),
                ))
            } else {
                Ok(())
            };
        }
    };
    let mut total = 0u64;
    let mut sources = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| Error::corrupt(path, format!("unreadable archive entry: {e}")))?;
        let name = entry.name().to_string();
        if !is_code(&name) {
            continue;
        }
        // bounded by what is read, not by what the entry declares
        let mut src = String::new();
        entry
            .by_ref()
            .take(MAX_CODE_BYTES + 1 - total)
            .read_to_string(&mut src)
            .map_err(|e| Error::corrupt(path, format!("{name}: unreadable code: {e}")))?;
        total += src.len() as u64;
        if total > MAX_CODE_BYTES {
            return Err(refuse(format!(
                "carries more than {} MB of code",
                MAX_CODE_BYTES >> 20
            )));
        }
        sources.push(src);
    }
    let defs: HashSet<String> = sources.iter().flat_map(|s| defined(s)).collect();
    for src in &sources {
        if let Some(op) = refused_operator(src, &defs) {
            return Err(refuse(format!(
                "runs {op}, which is not a tensor operator{}",
                why(&op)
            )));
        }
    }
    Ok(())
}

/// TorchScript source entries of an archive (`<name>/code/**.py`).
fn is_code(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    parts.len() >= 3 && parts[1] == "code" && name.ends_with(".py")
}

/// The source with string literals and comments blanked out (their text runs nothing).
fn strip(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                out.push(' ');
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c || d == '\n' {
                        break;
                    }
                }
                out.push(' ');
            }
            '#' => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The names `def`ined in TorchScript source `src` (methods a module's code may call on its
/// submodules).
pub fn defined(src: &str) -> HashSet<String> {
    strip(src)
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("def "))
        .filter_map(|l| l.split('(').next())
        .map(|n| n.trim().to_string())
        .collect()
}

/// The first name in TorchScript source `src` that runs something other than a tensor
/// operator, as written (`torch.from_file`, `print`, `ops.mylib.f`); `defs`: the functions and
/// methods defined in the archive.
pub fn refused_operator(src: &str, defs: &HashSet<String>) -> Option<String> {
    let s = strip(src);
    let b = s.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    let mut prev_word = "";
    while i < b.len() {
        if !(ident(b[i]) && !b[i].is_ascii_digit()) || (i > 0 && ident(b[i - 1])) {
            i += 1;
            continue;
        }
        // a dotted name starting here: a.b.c (`aten::x` as written in graphs, too)
        let start = i;
        let mut parts = Vec::new();
        loop {
            let w = i;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            parts.push(&s[w..i]);
            if i + 1 < b.len() && b[i] == b'.' && ident(b[i + 1]) {
                i += 1;
            } else if i + 2 < b.len() && &b[i..i + 2] == b"::" && ident(b[i + 2]) {
                i += 2;
            } else {
                break;
            }
        }
        let after_dot = start > 0 && b[start - 1] == b'.';
        let called = i < b.len() && b[i] == b'(';
        let name = &s[start..i];
        let word = prev_word;
        prev_word = if parts.len() == 1 { parts[0] } else { "" };
        if !ok_name(&parts, after_dot, called, word, defs) {
            return Some(name.to_string());
        }
    }
    None
}

/// Whether the (dotted) name `parts` may appear: `after_dot` for an attribute or method of a
/// value (`(l).forward`), `called` when a call follows, `word` the name before it (`def`).
fn ok_name(
    parts: &[&str],
    after_dot: bool,
    called: bool,
    word: &str,
    defs: &HashSet<String>,
) -> bool {
    let method = |m: &str| m.starts_with("forward") || TENSOR_OPS.contains(&m) || defs.contains(m);
    if after_dot {
        return !called || method(parts[parts.len() - 1]);
    }
    match parts[0] {
        "torch" | "aten" => parts.len() == 2 && TENSOR_OPS.contains(&parts[1]),
        "ops" => {
            parts.len() == 3
                && match parts[1] {
                    "aten" => TENSOR_OPS.contains(&parts[2]),
                    "prim" => PRIM_OPS.contains(&parts[2]),
                    _ => false,
                }
        }
        "__torch__" => !parts.contains(&"classes"), // code of this archive, checked too
        "os" | "sys" | "builtins" | "subprocess" | "io" | "pathlib" | "shutil" => false,
        _ if parts.len() > 1 => !called || method(parts[parts.len() - 1]),
        _ if !called => true,
        bare => {
            matches!(word, "def" | "class")
                || BARE.contains(&bare)
                || (bare.starts_with('_') && bare[1..].bytes().all(|c| c.is_ascii_digit()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_code_passes_and_side_effects_are_named() {
        let ok = r#"
class Linear(Module):
  __parameters__ = ["weight", "bias", ]
  def forward(self: __torch__.torch.nn.modules.linear.Linear, x: Tensor) -> Tensor:
    _0 = __torch__.torch.nn.functional.relu
    y = torch.linear(torch.flatten(x, 1), self.weight, CONSTANTS.c0)
    if torch.__isnot__(y, None):
      ops.prim.RaiseException("torch.save(x) # print(", "builtins.ValueError")
    for i in range(torch.len([1])):
      pass
    return (self).forward(_0(y, ), annotate(List[int], []))
"#;
        let defs = defined(ok);
        assert!(defs.contains("forward"));
        assert_eq!(refused_operator(ok, &defs), None);
        for (src, op) in [
            (
                "    t = torch.from_file(\"v.txt\", True, 4)\n",
                "torch.from_file",
            ),
            ("    print(\"hi\")\n", "print"),
            ("    torch.save(x, \"a.pt\")\n", "torch.save"),
            ("    y = ops.mylib.run(x)\n", "ops.mylib.run"),
            (
                "    y = torch.classes.lib.Thing()\n",
                "torch.classes.lib.Thing",
            ),
            ("    y = aten::from_file(x)\n", "aten::from_file"),
            ("    y = os.system(x)\n", "os.system"),
            ("    y = __import__(x)\n", "__import__"),
            ("    y = torch.ops.mylib.f(x)\n", "torch.ops.mylib.f"),
            ("    _0 = torch.load\n", "torch.load"),
            ("    y = (x).untyped_storage()\n", "untyped_storage"),
        ] {
            assert_eq!(refused_operator(src, &defs).as_deref(), Some(op), "{src}");
        }
        assert!(why("torch.from_file").contains("files"));
        assert!(why("print").contains("prints"));
        assert!(is_code("m/code/__torch__/a.py") && !is_code("m/constants.pkl"));
    }

    #[test]
    fn the_shipped_models_pass_and_other_files_are_refused_or_left_to_libtorch() {
        for m in [
            "mnist-cnn.pt",
            "mnist-cnn.features.pt",
            "mnist-judge.pt",
            "mnist-judge.features.pt",
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(m);
            check(&path).unwrap();
        }
        let tmp = tempfile::tempdir().unwrap();
        let junk = tmp.path().join("junk.pt");
        std::fs::write(&junk, b"not a model").unwrap();
        assert!(check(&junk).is_ok());
        let whole =
            std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/mnist-cnn.pt"))
                .unwrap();
        let half = tmp.path().join("half.pt");
        std::fs::write(&half, &whole[..whole.len() / 2]).unwrap();
        let e = check(&half).unwrap_err().to_string();
        assert!(
            e.contains("half.pt") && e.contains("unreadable zip archive"),
            "{e}"
        );
        let mobile = tmp.path().join("mobile.ptl");
        std::fs::write(&mobile, b"\x1c\0\0\0PTMF rest of a flatbuffer").unwrap();
        let e = check(&mobile).unwrap_err().to_string();
        assert!(
            e.contains("mobile.ptl: is a mobile (flatbuffer) module"),
            "{e}"
        );
    }
}
