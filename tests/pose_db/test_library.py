"""The library generator: coverage, determinism, prompts, spec errors, contact sheets."""

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pose_db.library.contact_sheet import main as contact_sheet_main
from pose_db.library.gate import QualityGate
from pose_db.library.generate import generate_library, select_actions
from pose_db.library.rig.camera import VIEW_NAMES
from pose_db.library.rig.skeleton3d import body_model
from pose_db.library.specs import ACTIONS_DIR, SpecError, load_actions
from pose_db.library.staging import rest_height, stage_action
from pose_db.scene.entry import LibraryEntry
from pose_db.scene.skeleton import KEYPOINT_INDEX as K


@pytest.fixture(scope="module")
def library():
    gate = QualityGate()
    start = time.perf_counter()
    entries = list(generate_library(gate=gate))
    return entries, gate.report, time.perf_counter() - start


@pytest.mark.slow
def test_the_library_meets_the_papers_size(library):
    entries, report, elapsed = library
    actions = load_actions()
    people = Counter(a.n_people for a in actions)
    assert len(actions) >= 300
    assert people[2] >= 75 and people[3] >= 20
    assert len(entries) >= 9000
    multi = sum(e.people > 1 for e in entries) / len(entries)
    assert 0.2 <= multi <= 0.4
    assert len({e.id for e in entries}) == len(entries)
    assert report.kept == len(entries)
    assert elapsed < 120  # "well under a minute" on a free core; CI shares its cores
    # Every one-person action gets its full ~30 entries through the gate.
    assert people[1] >= 215
    singles = {a.id for a in actions if a.n_people == 1}
    assert not singles & set(report.short_actions), report.short_actions


@pytest.mark.slow
def test_every_entry_is_consistent(library):
    entries, _, _ = library
    for e in entries:
        assert isinstance(e, LibraryEntry) and e.source == "synthetic"
        assert e.id.startswith(e.action + "-") and len(e.id.rsplit("-", 1)[1]) == 3
        assert e.people == len(e.scene.people) == len(e.profiles)
        assert e.view in VIEW_NAMES
        assert e.prompt == e.prompt.strip() and "{" not in e.prompt and "  " not in e.prompt
        assert (e.scene.width, e.scene.height) in {(512, 512), (512, 768), (768, 512)}


@pytest.mark.slow
def test_prompts_vary_along_the_axes_and_name_the_view(library):
    entries, _, _ = library
    by_action: dict[str, list[LibraryEntry]] = {}
    for e in entries:
        by_action.setdefault(e.action, []).append(e)
    for action, group in by_action.items():
        prompts = [e.prompt for e in group]
        assert len(set(prompts)) >= 0.9 * len(prompts), action
    # Several views per action, except where the readability rule leaves one (people sitting side by
    # side: the front view hides their thighs, the side view merges them; only three-quarter reads).
    one_view = [a for a, group in by_action.items() if len({e.view for e in group}) < 2]
    assert len(one_view) <= 0.03 * len(by_action), one_view
    views = {"side": ("side", "profile"), "back": ("behind", "back", "rear"),
             "high_angle": ("above", "high", "overhead", "bird"), "low_angle": ("below", "low", "worm", "looking up")}
    for e in entries:
        if e.view in views:
            assert any(word in e.prompt.lower() for word in views[e.view]), e.prompt


def test_generation_is_deterministic_and_seeded():
    ids = ["wave_hello", "handshake", "sit_chair"]
    a = list(generate_library(actions=ids, seed=1, variations=8))
    b = list(generate_library(actions=ids, seed=1, variations=8))
    c = list(generate_library(actions=ids, seed=2, variations=8))
    assert [e.id for e in a] == [e.id for e in b]
    assert [e.prompt for e in a] == [e.prompt for e in b]
    assert all(x.scene == y.scene for x, y in zip(a, b))
    assert [e.prompt for e in a] != [e.prompt for e in c]
    assert [e.id for e in a][:3] == ["wave_hello-000", "wave_hello-001", "wave_hello-002"]


def _torso(p):
    mid_hip = (p.xy[K["r_hip"]] + p.xy[K["l_hip"]]) / 2
    return np.linalg.norm(p.xy[K["neck"]] - mid_hip), mid_hip


def test_poses_are_geometrically_what_the_action_says():
    """Contacts are solved, not eyeballed: the 2D skeletons show them from every view."""
    entries = {a: list(generate_library(actions=[a], variations=10))
               for a in ("handshake", "hug", "shoulder_ride", "hands_on_hips", "sit_chair")}
    for e in entries["handshake"]:
        a, b = e.scene.people
        t = (_torso(a)[0] + _torso(b)[0]) / 2
        gap = min(np.linalg.norm(a.xy[i] - b.xy[j]) for i in (K["r_wrist"], K["l_wrist"]) for j in (K["r_wrist"], K["l_wrist"]))
        assert gap < 0.5 * t
    for e in entries["hug"]:
        a, b = e.scene.people
        for x, y in ((a, b), (b, a)):
            t, mid_hip = _torso(y)
            centre = (y.xy[K["neck"]] + mid_hip) / 2
            assert min(np.linalg.norm(x.xy[w] - centre) for w in (K["r_wrist"], K["l_wrist"])) < 0.9 * t
    for e in entries["shoulder_ride"]:
        base, top = e.scene.people
        t, _ = _torso(base)
        assert np.linalg.norm(_torso(top)[1] - base.xy[K["neck"]]) < 0.6 * t
    for e in entries["hands_on_hips"]:
        p = e.scene.people[0]
        if e.view == "front":
            t, _ = _torso(p)
            assert np.linalg.norm(p.xy[K["r_wrist"]] - p.xy[K["r_hip"]]) < 0.35 * t
            assert p.xy[K["r_elbow"], 0] < p.xy[K["r_shoulder"], 0] - 0.2 * t  # elbow out
    for e in entries["sit_chair"]:
        p = e.scene.people[0]
        t, mid_hip = _torso(p)
        knee_y = (p.xy[K["r_knee"], 1] + p.xy[K["l_knee"], 1]) / 2
        if e.view in ("front", "three_quarter", "side"):
            assert knee_y - mid_hip[1] < 0.35 * t


def _support_gaps(staged):
    body, person = staged.bodies[0], staged.people[0]
    return np.array([body.joints[j][1] - rest_height(j, body.profile) for j in person.support])


def _worst_support_gaps(action, seed=0):
    rng = np.random.default_rng(seed)
    worst = []
    for profile in ("adult", "child", "tall", "stocky"):
        for _ in range(4):
            jitter = [{n: float(rng.normal(0, s.jitter)) for n, s in body_model().dofs.items()}]
            worst.append(np.abs(_support_gaps(stage_action(action, [body_model().profiles[profile]], jitter))).max())
    return np.array(worst)


@pytest.mark.parametrize("action_id", ["yoga_downward_dog", "yoga_plank", "crawling", "yoga_cat_cow"])
def test_a_body_on_several_supports_settles_onto_all_of_them(action_id, monkeypatch):
    """Jitter and body sizes would leave a hand or a knee hovering; staging tilts the body
    (within a few degrees) so that every support of hands-and-feet poses meets the floor."""
    import pose_db.library.staging as staging

    action = select_actions(load_actions(), [action_id])[0]
    settled = _worst_support_gaps(action)
    assert (settled < QualityGate().floor_tolerance).mean() >= 0.9  # the gate drops the odd one out
    monkeypatch.setattr(staging, "_SETTLE_MAX", 0.0)
    unsettled = _worst_support_gaps(action)
    assert settled.mean() < 0.75 * unsettled.mean()


def test_a_stance_set_with_foot_contacts_stands_on_both_feet():
    """Wide stances place the feet with IK; the body is grounded again after its own contacts."""
    for action_id in ("yoga_warrior_two", "yoga_goddess", "karate_punch_horse"):
        action = select_actions(load_actions(), [action_id])[0]
        for profile in ("adult", "child", "tall"):
            staged = stage_action(action, [body_model().profiles[profile]])
            assert np.abs(_support_gaps(staged)).max() < 0.03 and max(staged.contact_miss) < 0.03
            body = staged.bodies[0]
            stance = abs(body.joints["r_ankle"][0] - body.joints["l_ankle"][0])
            assert stance > 2.5 * abs(body.joints["r_hip"][0] - body.joints["l_hip"][0])


def test_every_single_person_category_is_covered():
    cats = {a.category for a in load_actions() if a.n_people == 1}
    assert {"floor", "gestures", "locomotion", "sitting", "yoga", "dance", "martial_arts", "sports",
            "stretching", "work", "daily"} <= cats
    ids = {a.id for a in load_actions()}
    for wanted in ("wave_hello", "point_forward", "salute", "arms_crossed", "hands_on_hips", "thinking_chin",
                   "phone_call", "selfie", "sit_cross_legged", "kneel_one_knee", "squat", "lie_back", "running",
                   "jump_arms_up", "yoga_tree", "boxing_guard", "ballet_arabesque", "tennis_serve", "hammering"):
        assert wanted in ids


# ---- spec mistakes are caught with a clear message ------------------------------------------------


def _specs(tmp_path: Path, text: str, name: str = "mine") -> Path:
    folder = tmp_path / "specs"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)
    return folder


@pytest.mark.parametrize("text, message", [
    ("category: mine\nactions:\n  - {id: a, name: A, say: [x, y, z], pose: {base: stand, r_elbw: 30}}\n",
     "unknown person 0 pose key 'r_elbw' (did you mean 'r_elbow'?)"),
    ("category: mine\nactions:\n  - {id: a, name: A, say: [x, y, z], pose: {base: sofa}}\n", "unknown base posture 'sofa'"),
    ("category: other\nactions:\n  - {id: a, name: A, say: [x, y, z], pose: {}}\n", "must equal the file name"),
    ("category: mine\nactions:\n  - {id: a, name: A, say: [x, y], pose: {}}\n", "at least 3"),
    ("category: mine\nactions:\n  - {id: a, name: A, say: [x, y, z], pose: {r_arm: [1]}}\n", "r_arm must be [raise, swing]"),
    ("category: mine\nactions:\n  - {id: a, name: A, say: [x, y, '{2} hugs'], people: [{}, {}]}\n", "bad placeholder"),
    ("category: mine\nactions:\n  - {id: a, name: A, say: [x, y, z], people: [{}, {}],"
     " contacts: [{who: 0, hand: r, to: [3, chest]}]}\n", "person index 0 to 1"),
    ("category: mine\nactions:\n  - {id: a, name: A, say: [x, y, z], pose: {}, views: [sideways]}\n", "unknown view 'sideways'"),
    ("category: mine\nactions: [\n", "not valid YAML"),
])
def test_spec_mistakes_name_the_file_and_the_action(tmp_path, text, message):
    folder = _specs(tmp_path, text)
    with pytest.raises(SpecError) as err:
        list(generate_library(folder))
    assert message in str(err.value)
    assert "mine.yaml" in str(err.value)


def test_implausible_actions_are_refused_before_generating(tmp_path):
    far = ("category: mine\nactions:\n  - id: reach\n    name: Reach\n    say: [x, y, z]\n"
           "    people: [{at: [-2, 0]}, {at: [2, 0]}]\n    contacts: [{who: 0, hand: r, to: [1, r_wrist]}]\n")
    with pytest.raises(SpecError, match=r"mine.yaml: action 'reach': contact 0 .* misses its target"):
        list(generate_library(_specs(tmp_path, far)))
    bent = "category: mine\nactions:\n  - {id: bent, name: B, say: [x, y, z], pose: {r_elbow: 200}}\n"
    with pytest.raises(SpecError, match=r"'bent': person 0: r_elbow=200 outside"):
        list(generate_library(_specs(tmp_path, bent)))


def test_duplicate_ids_and_unknown_action_filters(tmp_path):
    folder = _specs(tmp_path, "category: mine\nactions:\n  - {id: a, name: A, say: [x, y, z], pose: {}}\n")
    (folder / "more.yaml").write_text("category: more\nactions:\n  - {id: a, name: A, say: [x, y, z], pose: {}}\n")
    with pytest.raises(SpecError, match="unique"):
        list(generate_library(folder))
    with pytest.raises(SpecError, match="unknown action id"):
        list(generate_library(actions=["no_such_action"]))


def test_a_custom_specs_folder_uses_the_shared_postures_and_axes(tmp_path):
    folder = _specs(tmp_path, "category: mine\nactions:\n  - {id: wave, name: W, say: [waving, waving hi, waving bye],"
                              " pose: {base: stand, r_arm: [150, 10], r_elbow: 20}}\n")
    entries = list(generate_library(folder, variations=5))
    assert [e.id for e in entries] == [f"wave-{k:03d}" for k in range(5)]
    assert all("wav" in e.prompt for e in entries)


def test_shipped_specs_all_load():
    actions = load_actions(ACTIONS_DIR)
    assert len({a.category for a in actions}) >= 5
    assert all(len(a.say) >= 3 for a in actions)


def test_contact_sheet_cli_writes_a_png_and_refuses_bad_input(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "sheet.png"
    assert contact_sheet_main(["--action", "hug", "--limit", "4", "--out", str(out)]) == 0
    image = Image.open(out)
    assert image.width > 0 and np.asarray(image).std() > 0
    assert contact_sheet_main(["--sample", "3", "--seed", "1", "--out", str(out)]) == 0
    bad = tmp_path / "bad.png"
    assert contact_sheet_main(["--action", "no_such_action", "--out", str(bad)]) == 2
    assert "unknown action id" in capsys.readouterr().err
    assert not bad.exists() and not list(tmp_path.glob("*.tmp"))


def test_library_check_cli_reports_counts(capsys):
    from pose_db.library.generate import main

    assert main(["--check"]) == 0
    out = capsys.readouterr().out
    assert "actions; by people" in out and "by category" in out


def test_aliases_are_drawn_as_phrases_and_checked(tmp_path):
    folder = _specs(tmp_path, "category: mine\nactions:\n  - {id: wave, name: W, say: [waving, waving hi, waving bye],"
                              " aliases: [saying hello with a hand, waving], pose: {base: stand, r_arm: [150, 10], r_elbow: 20}}\n")
    (spec,) = load_actions(folder)
    assert spec.aliases == ("saying hello with a hand", "waving")
    assert spec.say == ("waving", "waving hi", "waving bye", "saying hello with a hand")  # no duplicate
    entries = list(generate_library(folder, variations=24))
    assert any("saying hello with a hand" in e.prompt for e in entries)
    bad = _specs(tmp_path, "category: mine\nactions:\n  - {id: w, name: W, say: [x, y, z], aliases: ['{0} waves'], pose: {}}\n")
    with pytest.raises(SpecError, match="aliases take no placeholders"):
        list(generate_library(bad))
    (bad / "mine.yaml").write_text("category: mine\nactions:\n  - {id: w, name: W, say: [x, y, z], aliases: hi, pose: {}}\n")
    with pytest.raises(SpecError, match="'aliases' must be a list"):
        list(generate_library(bad))


def test_shipped_aliases_name_their_actions():
    by_id = {a.id: a for a in load_actions(ACTIONS_DIR)}
    assert "facepalming" in by_id["facepalm"].aliases and "doing a princess carry" in by_id["bridal_carry"].aliases
    assert all(set(a.aliases) <= set(a.say) for a in by_id.values())


def test_a_preferred_view_is_one_of_the_actions_views_and_travels_with_its_entries(tmp_path):
    folder = _specs(tmp_path, "category: mine\npreferred_view: side\nactions:\n"
                              "  - {id: walk, name: W, say: [walking, strolling, walking along], pose: {base: walk}}\n"
                              "  - {id: wave, name: V, say: [waving, waving hi, waving bye], preferred_view: front,"
                              " views: [front, back], pose: {base: stand, r_arm: [150, 10], r_elbow: 20}}\n")
    walk, wave = load_actions(folder)
    assert (walk.preferred_view, wave.preferred_view) == ("side", "front")  # the category's default, an override
    entries = list(generate_library(folder, variations=6))
    assert {e.action: e.preferred_view for e in entries} == {"walk": "side", "wave": "front"}
    (folder / "mine.yaml").write_text("category: mine\nactions:\n  - {id: w, name: W, say: [x, y, z],"
                                      " views: [front, back], preferred_view: side, pose: {}}\n")
    with pytest.raises(SpecError, match="preferred_view 'side' is not one of the action's views"):
        load_actions(folder)


def test_the_new_actions_creators_ask_for_are_shipped_with_aliases_and_views():
    by_id = {a.id: a for a in load_actions(ACTIONS_DIR)}
    wanted = {"headstand": 1, "shoulder_stand": 1, "superhero_landing": 1, "archery": 1, "basketball_dunk": 1,
              "walking_away_looking_back": 1, "kneeling_proposal": 2, "kabedon": 2, "head_in_lap": 2,
              "cheering_together": 2, "thumbs_up": 1, "shrug": 1, "facepalm": 1}
    assert {a: by_id[a].n_people for a in wanted} == wanted
    assert all(by_id[a].aliases for a in wanted)
    assert by_id["walking"].preferred_view == by_id["sit_chair"].preferred_view == "side"
    assert by_id["kneeling_proposal"].preferred_view == "three_quarter"  # a pair facing each other: seen across
    assert "drawing a bow and arrow" in by_id["archery"].aliases and "bowing politely" in by_id["bow"].aliases
