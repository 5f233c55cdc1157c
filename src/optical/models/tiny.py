"""Tiny random-weight BERT encoders with a WordPiece tokenizer learned on the fly, for tests.

A tiny model is a real Hugging Face model directory (``AutoTokenizer`` / ``AutoModel`` load
it), so tests of training and evaluation run the real code paths in well under a second.
Given the same seed and corpus the directory is the same: the tokenizer trainer is
deterministic (see :func:`train_wordpiece_tokenizer`) and the weights come from a seeded
``torch.Generator``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel

from optical.models.check import check_tiny_shape
from optical.storage import atomic_directory

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# A small multilingual corpus in code, used when the caller passes none; sentences in the
# scripts of the project's languages so that every script has word pieces.
BUILTIN_CORPUS: tuple[str, ...] = (
    "The weather is nice today and the children are playing outside.",
    "How many people live in the capital city of the country?",
    "The museum opens at nine in the morning and closes at five.",
    "Scientists discovered a new species of frog in the rain forest.",
    "Das Wetter ist heute schön und die Kinder spielen draußen.",
    "El museo abre a las nueve de la mañana y cierra a las cinco.",
    "Ο καιρός είναι ωραίος σήμερα και τα παιδιά παίζουν έξω.",
    "Πόσοι άνθρωποι ζουν στην πρωτεύουσα της χώρας;",
    "วันนี้อากาศดีและเด็ก ๆ กำลังเล่นอยู่ข้างนอก",
    "พิพิธภัณฑ์เปิดเวลาเก้าโมงเช้าและปิดเวลาห้าโมงเย็น",
    "आज मौसम अच्छा है और बच्चे बाहर खेल रहे हैं।",
    "देश की राजधानी में कितने लोग रहते हैं?",
    "Bugün hava güzel ve çocuklar dışarıda oynuyor.",
    "Müze sabah dokuzda açılır ve beşte kapanır.",
    "Hôm nay thời tiết đẹp và bọn trẻ đang chơi bên ngoài.",
    "Có bao nhiêu người sống ở thủ đô của đất nước?",
    "الطقس جميل اليوم والأطفال يلعبون في الخارج.",
    "كم عدد الأشخاص الذين يعيشون في عاصمة البلاد؟",
    "今天天气很好，孩子们在外面玩。",
    "这个国家的首都有多少人居住？",
    "Погода сегодня хорошая, и дети играют на улице.",
    "Vremea este frumoasă astăzi și copiii se joacă afară.",
)


def train_wordpiece_tokenizer(corpus: Iterable[str], vocab_size: int = 1000, max_piece_chars: int = 8) -> Tokenizer:
    """A cased BERT-style WordPiece tokenizer (``[CLS] text [SEP]``) whose vocabulary is learned
    from ``corpus`` by a deterministic frequency count.

    ``tokenizers``' own WordPiece trainer is not reproducible across processes: it numbers the
    "##x" pieces in hash-map order and breaks ties between equally frequent merges by those
    numbers, so two runs can differ by a piece or two. Here the vocabulary is: the special
    tokens, the ``vocab_size // 3`` most frequent characters (word-initial and "##"
    continuation forms), then the substrings of pre-tokenized words (up to ``max_piece_chars``)
    with the highest frequency x length, ties broken by the string. Rarer characters become
    ``[UNK]``. Normalisation, pre-tokenization and greedy longest-match WordPiece are the
    ``tokenizers`` components BERT uses.
    """
    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    word_counts: Counter[str] = Counter()
    for text in corpus:
        word_counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    char_counts: Counter[str] = Counter()
    for word, count in word_counts.items():
        for ch in word:
            char_counts[ch] += count
    ranked_chars = sorted(char_counts.items(), key=lambda item: (-item[1], item[0]))
    alphabet = sorted(ch for ch, _ in ranked_chars[: vocab_size // 3])
    piece_scores: Counter[str] = Counter()
    for word, count in word_counts.items():
        if not set(word) <= set(alphabet):
            continue
        for start in range(len(word)):
            for stop in range(start + 2, min(len(word), start + max_piece_chars) + 1):
                piece = word[start:stop] if start == 0 else "##" + word[start:stop]
                piece_scores[piece] += count * (stop - start)
    base = SPECIAL_TOKENS + alphabet + ["##" + ch for ch in alphabet]
    ranked_pieces = sorted(piece_scores.items(), key=lambda item: (-item[1], item[0]))
    learned = [piece for piece, _ in ranked_pieces[: max(0, vocab_size - len(base))]]
    vocab = {piece: i for i, piece in enumerate(base + sorted(learned))}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.WordPiece()
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return tokenizer


def make_tiny_model(
    out_dir: str | Path,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    seed: int = 0,
    vocab_size: int = 1000,
    corpus: Sequence[str] | None = None,
    max_positions: int = 512,
    dropout: float = 0.1,
) -> Path:
    """Write a random-weight ``BertModel`` + WordPiece tokenizer to ``out_dir``; return it.

    ``dropout`` is BERT's hidden and attention-probability dropout (its default 0.1); 0 leaves a model whose
    training step is as little arithmetic as the architecture allows (the host-bound benchmark).

    ``corpus`` trains the tokenizer (e.g. a few hundred bitext lines, both sides); it defaults
    to :data:`BUILTIN_CORPUS`. The vocabulary is at most ``vocab_size`` (smaller when the
    corpus has fewer distinct pieces).
    """
    check_tiny_shape(hidden, layers, heads, seed, vocab_size)
    tokenizer = train_wordpiece_tokenizer(corpus if corpus is not None else BUILTIN_CORPUS, vocab_size)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=max_positions,
        type_vocab_size=2,
        pad_token_id=tokenizer.token_to_id("[PAD]"),
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    model = BertModel(config, add_pooling_layer=False)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            if "LayerNorm" in name:
                parameter.copy_(torch.ones_like(parameter) if name.endswith("weight") else torch.zeros_like(parameter))
            else:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * config.initializer_range)
    specials = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
    with atomic_directory(Path(out_dir)) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save(str(tmp / "tokenizer.json"))
        (tmp / "tokenizer_config.json").write_text(
            json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_positions, **specials}, indent=2)
            + "\n",
            encoding="utf-8",
        )
        (tmp / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n", encoding="utf-8")
    return Path(out_dir)


def make_tiny_seq2seq(out_dir: str | Path, seed: int = 0, corpus: Sequence[str] | None = None, d_model: int = 32) -> Path:
    """Write a random-weight BART (one encoder and one decoder layer) with the tiny WordPiece tokenizer: a real
    sequence-to-sequence model directory that ``AutoModelForSeq2SeqLM`` loads and ``generate`` decodes with, standing
    in for an MT model in the translate-test tests (its "translations" are a few random word pieces)."""
    from transformers import BartConfig, BartForConditionalGeneration

    tokenizer = train_wordpiece_tokenizer(corpus if corpus is not None else BUILTIN_CORPUS, 1000)
    pad, cls, sep = (tokenizer.token_to_id(token) for token in ("[PAD]", "[CLS]", "[SEP]"))
    config = BartConfig(
        vocab_size=tokenizer.get_vocab_size(),
        d_model=d_model,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        max_position_embeddings=256,
        pad_token_id=pad,
        bos_token_id=cls,
        eos_token_id=sep,
        decoder_start_token_id=sep,
        forced_eos_token_id=sep,
    )
    torch.manual_seed(seed)
    model = BartForConditionalGeneration(config)
    # A random decoder would end at once or never: each "translation" says three word pieces, then stops.
    model.generation_config.min_new_tokens = 3
    with torch.no_grad():
        model.final_logits_bias[0, sep] = 10.0
    specials = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "eos_token": "[SEP]"}
    with atomic_directory(Path(out_dir)) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save(str(tmp / "tokenizer.json"))
        (tmp / "tokenizer_config.json").write_text(
            json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 256, **specials}, indent=2) + "\n",
            encoding="utf-8",
        )
    return Path(out_dir)
