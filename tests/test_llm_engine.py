"""The LLM engine without Qt: tokenizer, chat template, sampling, stop strings, EOS, UTF-8 streaming, context."""

from __future__ import annotations

import numpy as np
import pytest
from llm_tiny import exported_tiny, tiny_engine, tiny_vocab

from genstudio.engines.llm.context import ContextOverflow, fit_context
from genstudio.engines.llm.sampling import Sampler, SamplingSettings
from genstudio.engines.llm.stops import StopMatcher
from genstudio.engines.llm.tokenizer import ChatTokenizer


@pytest.fixture(scope="module")
def tok() -> ChatTokenizer:
    folder = exported_tiny()
    import json

    special = json.loads((folder / "model.json").read_text())["extra"]["special_tokens"]
    return ChatTokenizer.from_files(folder / "tokenizer.json", folder / "chat_template.jinja", special=special)


# -- tokenizer ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["hello there, the world", "12345 digits", "ça va? 日本語 🙂", "  two\n\nlines\t"])
def test_tokenizer_round_trip(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_digits_are_split_one_by_one(tok):
    pieces = [tok.tok.id_to_token(i) for i in tok.encode("2024")]
    assert pieces == ["2", "0", "2", "4"]


def test_merges_and_special_tokens(tok):
    tokens, _ = tiny_vocab()
    assert tok.encode(" the") == [tokens.index("Ġthe")]
    ids = tok.encode("<|im_start|>user")
    assert ids[0] == tokens.index("<|im_start|>")
    assert tok.decode(ids) == "user"  # specials are hidden in text


def test_chat_template_renders_gguf_template(tok):
    text = tok.render([{"role": "user", "content": "hi"}])
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant")
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    own = tok.render([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    assert own.startswith("<|im_start|>system\nBe brief.<|im_end|>")


def test_template_is_sandboxed():
    from tokenizers import Tokenizer, models

    bad = ChatTokenizer(Tokenizer(models.BPE()), "{{ messages.__class__.__mro__ }}")
    with pytest.raises(ValueError, match="chat template"):
        bad.render([{"role": "user", "content": "x"}])


def test_a_broken_or_missing_tokenizer_names_its_file(tmp_path):
    broken = tmp_path / "tokenizer.json"
    broken.write_text((exported_tiny() / "tokenizer.json").read_text(encoding="utf-8")[:300], encoding="utf-8")
    for path in (broken, tmp_path / "gone" / "tokenizer.json"):
        with pytest.raises(ValueError, match="tokenizer.json"):
            ChatTokenizer.from_files(path)


def test_streaming_never_splits_a_utf8_character(tok):
    text = "é日🙂 ok"
    ids = tok.encode(text)
    assert len(ids) > len(text)  # multi-byte characters are several byte tokens here
    stream = tok.stream()
    deltas = [stream.push(i) for i in ids] + [stream.flush()]
    assert "".join(deltas) == text
    assert all("\ufffd" not in d for d in deltas)
    assert "" in deltas  # some tokens held their bytes back


# -- sampling -------------------------------------------------------------------------------------------
def test_greedy_and_seed_reproducibility():
    logits = np.random.default_rng(0).normal(size=100).astype(np.float32)
    assert Sampler(SamplingSettings(temperature=0))(logits) == int(np.argmax(logits))
    a = [Sampler(SamplingSettings(temperature=1.0, top_p=1.0, seed=7))(logits) for _ in range(5)]
    s = Sampler(SamplingSettings(temperature=1.0, top_p=1.0, seed=7))
    b = [s(logits) for _ in range(5)]
    assert a == [b[0]] * 5  # a fresh sampler with the same seed starts the same
    s2 = Sampler(SamplingSettings(temperature=1.0, top_p=1.0, seed=7))
    assert [s2(logits) for _ in range(5)] == b


def test_top_k_top_p_min_p():
    logits = np.log(np.array([0.5, 0.3, 0.1, 0.06, 0.04]))
    p = Sampler(SamplingSettings(temperature=1, top_k=2, top_p=1.0)).probabilities(logits)
    assert np.count_nonzero(p) == 2 and p[0] == pytest.approx(0.625)
    p = Sampler(SamplingSettings(temperature=1, top_p=0.85)).probabilities(logits)
    assert set(np.flatnonzero(p)) == {0, 1, 2}  # 0.5 + 0.3 < 0.85 <= 0.9
    p = Sampler(SamplingSettings(temperature=1, top_p=1.0, min_p=0.25)).probabilities(logits)
    assert set(np.flatnonzero(p)) == {0, 1}  # 0.1 < 0.25 * 0.5
    big = np.random.default_rng(1).normal(size=50_000)
    p = Sampler(SamplingSettings(temperature=1, top_p=0.5)).probabilities(big)
    kept = np.sort(np.exp(big - big.max()) / np.exp(big - big.max()).sum())[::-1]
    assert np.count_nonzero(p) == int(np.searchsorted(np.cumsum(kept), 0.5)) + 1
    draws = Sampler(SamplingSettings(temperature=1, top_k=2, top_p=1.0, seed=0))
    assert {draws(logits) for _ in range(200)} == {0, 1}


def test_repetition_penalty():
    s = Sampler(SamplingSettings(temperature=0, repetition_penalty=2.0))
    logits = np.array([2.0, 1.5, -1.0])
    assert s(logits, np.array([0])) == 1  # 2.0 / 2 < 1.5
    np.testing.assert_allclose(s.penalize(logits, np.array([2])), [2.0, 1.5, -2.0])


def test_settings_of_the_wrong_type_keep_the_defaults():
    # a hand-edited chat history or model.json: the tab shows the settings instead of failing to open the chat
    s = SamplingSettings.from_dict({"temperature": "hot", "top_p": "0.5", "top_k": 5.0, "seed": "7",
                                    "max_new_tokens": None, "stop": "###", "unknown": 1})
    assert s == SamplingSettings(top_p=0.5, top_k=5, seed=7, stop=["###"])
    assert isinstance(s.top_k, int) and isinstance(s.top_p, float)
    assert SamplingSettings.from_dict({"seed": None, "stop": 3}) == SamplingSettings()


def test_perplexity_refuses_a_window_under_two_tokens():
    from genstudio.engines.llm.perplexity import perplexity

    for window in (1, 0, -3):
        with pytest.raises(ValueError, match="window"):
            next(perplexity(lambda ids: np.zeros((len(ids), 4)), [1, 2, 3], window=window))


def test_stop_matcher_holds_back_and_cuts():
    m = StopMatcher(["\nUser:"])
    shown = [m.push(x) for x in ["Hello", "\nUs", "er", ": more"]]
    assert shown[0] == ("Hello", False) and shown[1] == ("", False) and shown[2] == ("", False)
    assert shown[3] == ("", True)
    m = StopMatcher(["###"])
    assert m.push("a#") == ("a", False) and m.push("b") == ("#b", False)
    assert m.push("#", final=True) == ("#", False)


# -- the engine on the tiny model -------------------------------------------------------------------------
def test_generate_streams_and_reproduces_with_a_seed():
    eng = tiny_engine()
    msgs = [{"role": "user", "content": "hello"}]
    s = SamplingSettings(temperature=0.8, seed=11, max_new_tokens=12)
    deltas = list(eng.generate(msgs, s))
    assert deltas and deltas[-1].text == "".join(d.delta for d in deltas)
    r1 = eng.chat(msgs, s)
    eng.decoder.reset()
    r2 = eng.chat(msgs, s)
    assert r1.token_ids == r2.token_ids and r1.text == r2.text
    assert r1.stats.prompt_tokens > 0 and r1.stats.time_to_first_token_s > 0


def test_eos_and_stop_strings_end_the_reply():
    eng = tiny_engine(variant="fp32")
    msgs = [{"role": "user", "content": "hi"}]
    greedy = SamplingSettings(temperature=0, max_new_tokens=10, repetition_penalty=1.0)
    ref = eng.chat(msgs, greedy)
    assert ref.finish_reason == "length" and len(ref.token_ids) == 10
    # make the 4th greedy token an end-of-sequence token: the reply stops before it
    eng.tokenizer.special.eos_ids = [ref.token_ids[3]]
    r = eng.chat(msgs, greedy)
    assert r.finish_reason == "eos" and r.token_ids == ref.token_ids[:3]
    eng.tokenizer.special.eos_ids = [2]
    stop = ref.text[len(ref.text) // 2:][:2]
    if stop:
        r = eng.chat(msgs, greedy.with_(stop=[stop]))
        assert r.finish_reason == "stop" and r.text == ref.text[:ref.text.index(stop)]


def test_cancel_between_tokens():
    eng = tiny_engine()
    gen = eng.generate([{"role": "user", "content": "x"}], SamplingSettings(seed=1, max_new_tokens=50))
    next(gen)
    next(gen)
    gen.close()  # a cancel at a yield: the generator ends cleanly, the engine stays usable
    assert eng.chat([{"role": "user", "content": "y"}], SamplingSettings(seed=1, max_new_tokens=3)).stats.new_tokens


# -- context overflow ------------------------------------------------------------------------------------
def test_overflow_drops_oldest_turns_and_keeps_system(tok):
    system = {"role": "system", "content": "You are terse."}
    turns = []
    for i in range(12):
        turns += [{"role": "user", "content": f"question {i} " + "word " * 10},
                  {"role": "assistant", "content": f"answer {i} " + "reply " * 10}]
    turns.append({"role": "user", "content": "the last question"})
    ids, dropped, notice = fit_context(tok, [system] + turns, window=256, max_new_tokens=64)
    assert dropped > 0 and len(ids) <= 256 - 64 and "left out" in notice
    text = tok.decode(ids)
    assert text.startswith("system\nYou are terse.") and "the last question" in text
    assert "question 0 " not in text and "question 11" in text
    kept = tok.render([system] + turns[dropped:])
    assert tok.encode(kept) == ids  # whole turns were dropped, oldest first, starting at a user message
    with pytest.raises(ContextOverflow):
        fit_context(tok, [system, {"role": "user", "content": "word " * 400}], window=256, max_new_tokens=64)


def test_engine_tells_the_user_when_turns_are_dropped():
    eng = tiny_engine()
    turns = []
    for _i in range(10):
        turns += [{"role": "user", "content": "tell me " * 12}, {"role": "assistant", "content": "ok " * 12}]
    gen = eng.generate(turns + [{"role": "user", "content": "now"}], SamplingSettings(seed=0, max_new_tokens=8))
    first = next(gen)
    assert first.notice and "left out" in first.notice
    gen.close()


def test_a_history_with_an_empty_stopped_reply_renders_with_a_template_that_wants_alternating_turns(tmp_path):
    from tokenizers import Tokenizer, models

    from genstudio.engines.llm.store import ChatStore

    strict = ChatTokenizer(Tokenizer(models.BPE()), (  # as Llama 2 and Mistral templates check
        "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"))
    s = ChatStore(tmp_path / "c.sqlite3")
    c = s.create("Q")
    s.add_message(c.id, "user", "first")
    s.add_message(c.id, "assistant", "", {"new_tokens": 0, "stopped": True})  # stopped before any token
    s.add_message(c.id, "user", "second")
    assert strict.render(s.chat_messages(c.id)) == "[user] first\n\nsecond\n"
