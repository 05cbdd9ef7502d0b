"""``model.pretrained`` in the NER, QA and pre-training recipes: a local Hugging Face BERT folder
(made here: a tiny BERT and its character vocabulary, laid out as a downloaded checkpoint is)
starts each task; a hub id that is not on disk is a one-line error (the tests run offline)."""
import pytest

from nlp_app.common.tokenization import build_char_vocab, char_tokenizer
from shared import runs

TEXTS = ["张伟在北京接受了新华社的采访。", "王芳出生于上海，是一名工程师。", "李娜在广州的人民日报工作。"]
# per task: overrides on the tiny recipe, and the runs folder it writes to
STARTS = {
    "ner": (["model.encoder=bert", "model.word_features=false", "model.crf=true"], "ner-test"),
    "ner-no-crf": (["model.encoder=bert", "model.word_features=false", "model.crf=false"], "ner-test"),
    "qa": ([], "qa-test"),
    "pretrain": ([], "pretrain"),
}


@pytest.fixture(scope="module")
def local_bert(tmp_path_factory, make_ner_sentences):
    from transformers import BertConfig, BertForMaskedLM

    folder = tmp_path_factory.mktemp("tiny-bert-chinese")
    texts = TEXTS + ["".join(chars) for chars, _ in make_ner_sentences(40, seed=1)]
    tokenizer = char_tokenizer(build_char_vocab(texts, min_freq=1))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("start", list(STARTS))
def test_a_local_bert_folder_starts_the_task(start, local_bert, recipes, cli):
    overrides, name = STARTS[start]
    path, tiny = recipes[start.split("-")[0]]
    assert cli("train", "--config", path, *tiny, *overrides, f"model.pretrained={local_bert}") == 0
    run = runs.latest_run("nlp_app", name)
    assert runs.load_run_config(run)["model"]["pretrained"] == str(local_bert)
    assert runs.read_json(run / "config.json")["vocab_size"] == runs.read_json(local_bert / "config.json")["vocab_size"]
    assert (run / "crf.json").exists() == (start == "ner")
    assert cli("evaluate", "--run", run) == 0


@pytest.mark.parametrize("task", ["ner", "qa", "pretrain"])
def test_a_hub_id_not_on_disk_is_one_line(task, recipes, cli, capsys):
    path, tiny = recipes[task]
    overrides = STARTS[task][0]
    capsys.readouterr()
    assert cli("train", "--config", path, *tiny, *overrides, "model.pretrained=hfl/no-such-checkpoint") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hfl/no-such-checkpoint" in err[0] and "Traceback" not in err[0]


def test_ner_pretrained_needs_the_bert_encoder(recipes, cli, capsys):
    path, _ = recipes["ner"]
    assert cli("train", "--config", path, "model.pretrained=hfl/rbt3") == 2
    assert "model.encoder=bert" in capsys.readouterr().err
