"""Flow files: each kind of mistake is refused with an error naming the file, the node and the field."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from voice.ivr.checks import FlowProblem
from voice.ivr.loader import FlowError, check_directory, load_flow, load_flows, parse_flow
from voice.ivr.schema import MenuNode, NodeKind

SHIPPED = Path(__file__).resolve().parents[3] / "ivr_flows"

BASE_YAML = """\
name: prueba
languages: [es, en]
default_language: es
start: inicio
schedules:
  oficina:
    time_zone: Europe/Madrid
    weekly: {mon: ["09:00-18:00"]}
    holidays: [2025-01-06]
nodes:
  inicio: {kind: play, prompt: {es: Hola, en: Hello}, next: horario}
  horario:
    kind: condition
    rules: [{business_hours: oficina, next: menu}]
    default: adios
  menu:
    kind: menu
    prompt: {es: Pulse 1 o 2, en: Press 1 or 2}
    no_input_prompt: {es: "¿Sigue ahí?", en: "Are you there?"}
    no_match_prompt: {es: No le entiendo, en: "Sorry?"}
    on_failure: adios
    options:
      1: {next: cola, phrases: {es: [saldo], en: [balance]}}
      2: {next: adios}
  cola: {kind: queue, queue: general}
  adios: {kind: hangup, prompt: {es: Adiós, en: Goodbye}}
"""
BASE: dict[str, Any] = yaml.safe_load(BASE_YAML)
ASK = {
    "prompt": {"es": "a", "en": "b"},
    "no_input_prompt": {"es": "a", "en": "b"},
    "no_match_prompt": {"es": "a", "en": "b"},
    "on_failure": "adios",
}


def problems_after(change: Callable[[dict[str, Any]], object]) -> list[str]:
    data = copy.deepcopy(BASE)
    change(data)
    flow, problems = parse_flow(
        yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode(), file="prueba.yaml"
    )
    assert (flow is None) == bool(problems)
    return [str(problem) for problem in problems]


def nodes(data: dict[str, Any]) -> dict[str, Any]:
    nodes_: dict[str, Any] = data["nodes"]
    return nodes_


def loop_of_plays(data: dict[str, Any]) -> None:
    nodes(data)["menu"]["options"][2] = {"next": "bucle_a"}
    nodes(data)["bucle_a"] = {"kind": "play", "prompt": {"es": "a", "en": "a"}, "next": "bucle_b"}
    nodes(data)["bucle_b"] = {"kind": "play", "prompt": {"es": "b", "en": "b"}, "next": "bucle_a"}


def menu_that_only_returns_to_itself(data: dict[str, Any]) -> None:
    nodes(data)["menu"]["options"] = {1: {"next": "otra_vez"}, 2: {"next": "menu"}}
    nodes(data)["menu"]["on_failure"] = "menu"
    nodes(data)["otra_vez"] = {"kind": "set_language", "language": "en", "next": "menu"}


def loop_of_conditions(data: dict[str, Any]) -> None:
    nodes(data)["horario"]["default"] = "idioma"
    nodes(data)["idioma"] = {"kind": "set_language", "language": "es", "next": "horario"}


def collect(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        nodes(data)["menu"]["options"][2] = {"next": "dni"}
        nodes(data)["dni"] = {
            "kind": "collect",
            **ASK,
            "variable": "dni",
            "max_length": 9,
            "next": "adios",
            **fields,
        }

    return change


def add_node(node_id: str, node: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        nodes(data)["menu"]["options"][2] = {"next": node_id}
        nodes(data)[node_id] = node

    return change


KINDS = ", ".join(kind.value for kind in NodeKind)

MISTAKES: list[tuple[str, Callable[[dict[str, Any]], object], list[str]]] = [
    (
        "unknown node reference",
        lambda d: nodes(d)["menu"]["options"][2].update(next="facturas"),
        ["prueba.yaml: node 'menu', field 'options.2.next': unknown node 'facturas'"],
    ),
    (
        "unknown start node",
        lambda d: d.update(start="principio"),
        ["prueba.yaml: field 'start': unknown node 'principio'"],
    ),
    (
        "unreachable node",
        lambda d: nodes(d).update(huerfano={"kind": "hangup"}),
        ["prueba.yaml: node 'huerfano': unreachable from the start node 'inicio'"],
    ),
    (
        "loop with no exit",
        loop_of_plays,
        [
            "prueba.yaml: node 'bucle_a', field 'next': loop with no exit: bucle_a -> bucle_b -> bucle_a "
            "(no hangup, queue or transfer can be reached)"
        ],
    ),
    (
        "menu whose every answer comes back",
        menu_that_only_returns_to_itself,
        [
            "prueba.yaml: node 'cola': unreachable from the start node 'inicio'",
            "prueba.yaml: node 'menu', field 'options.2.next': loop with no exit: menu -> menu "
            "(no hangup, queue or transfer can be reached)",
        ],
    ),
    (
        "loop that never waits",
        loop_of_conditions,
        [
            "prueba.yaml: node 'horario', field 'default': "
            "loop that never waits for the caller: horario -> idioma -> horario"
        ],
    ),
    (
        "prompt missing a language",
        lambda d: nodes(d)["inicio"].update(prompt={"es": "Hola"}),
        ["prueba.yaml: node 'inicio', field 'prompt': missing language 'en'"],
    ),
    (
        "retry prompt missing a language",
        lambda d: nodes(d)["menu"].update(no_match_prompt={"en": "Sorry?"}),
        ["prueba.yaml: node 'menu', field 'no_match_prompt': missing language 'es'"],
    ),
    (
        "prompt in a language the flow lacks",
        lambda d: nodes(d)["adios"]["prompt"].update(fr="Au revoir"),
        ["prueba.yaml: node 'adios', field 'prompt.fr': 'fr' is not one of the flow's languages (es, en)"],
    ),
    (
        "option phrases missing a language",
        lambda d: nodes(d)["menu"]["options"][1].update(phrases={"es": ["saldo"]}),
        ["prueba.yaml: node 'menu', field 'options.1.phrases': missing language 'en'"],
    ),
    (
        "synonyms in a language the flow lacks",
        lambda d: nodes(d)["menu"]["options"][1].update(synonyms={"ca": ["saldo del compte"]}),
        [
            "prueba.yaml: node 'menu', field 'options.1.synonyms.ca': "
            "'ca' is not one of the flow's languages (es, en)"
        ],
    ),
    (
        "one phrase for two options",
        lambda d: nodes(d)["menu"]["options"][2].update(synonyms={"es": ["Saldo"]}),
        ["prueba.yaml: node 'menu', field 'options.2.synonyms.es.0': 'Saldo' is also a phrase of option '1'"],
    ),
    (
        "default language not among the languages",
        lambda d: d.update(default_language="ca"),
        ["prueba.yaml: field 'default_language': 'ca' is not one of the flow's languages (es, en)"],
    ),
    (
        "bad value",
        lambda d: nodes(d)["cola"].update(priority=11),
        ["prueba.yaml: node 'cola', field 'priority': Input should be less than or equal to 10 (got 11)"],
    ),
    (
        "unknown kind",
        lambda d: nodes(d)["cola"].update(kind="cole"),
        [f"prueba.yaml: node 'cola', field 'kind': unknown kind 'cole'; one of: {KINDS}"],
    ),
    (
        "misspelt field",
        lambda d: nodes(d)["inicio"].update(nexto="horario"),
        ["prueba.yaml: node 'inicio', field 'nexto': unknown field"],
    ),
    (
        "missing field",
        lambda d: nodes(d)["menu"].pop("on_failure"),
        ["prueba.yaml: node 'menu', field 'on_failure': required"],
    ),
    (
        "bad node id",
        lambda d: nodes(d).update({"Menu-X": {"kind": "hangup"}}),
        [
            "prueba.yaml: node 'Menu-X': bad node id 'Menu-X': "
            "String should match pattern '^[a-z][a-z0-9_]{0,63}$'"
        ],
    ),
    (
        "option key that is not a key",
        lambda d: nodes(d)["menu"]["options"].update({10: {"next": "adios"}}),
        [
            "prueba.yaml: node 'menu', field 'options.10': bad key '10': "
            "String should match pattern '^[0-9*#]$'"
        ],
    ),
    (
        "audio outside the prompt directory",
        lambda d: nodes(d)["inicio"].update(prompt={"es": {"audio": "../secretos.wav"}, "en": "Hi"}),
        [
            "prueba.yaml: node 'inicio', field 'prompt.es.audio': an audio file name is a relative path of "
            "letters, digits, '_', '-', '.', '/'"
        ],
    ),
    (
        "prompt with nothing to say",
        lambda d: nodes(d)["inicio"].update(prompt={"es": {}, "en": "Hi"}),
        ["prueba.yaml: node 'inicio', field 'prompt.es': a prompt needs a text, an audio file or both"],
    ),
    (
        "hours backwards",
        lambda d: d["schedules"]["oficina"]["weekly"].update(mon=["18:00-09:00"]),
        [
            "prueba.yaml: field 'schedules.oficina.weekly.mon.0': hours must end after they start "
            "(split a range that crosses midnight)"
        ],
    ),
    (
        "hours badly written",
        lambda d: d["schedules"]["oficina"]["weekly"].update(mon=["9-18"]),
        [
            "prueba.yaml: field 'schedules.oficina.weekly.mon.0': hours are written 'HH:MM-HH:MM', "
            "e.g. '08:00-20:00', not '9-18'"
        ],
    ),
    (
        "unknown time zone",
        lambda d: d["schedules"]["oficina"].update(time_zone="Europe/Madird"),
        [
            "prueba.yaml: field 'schedules.oficina.time_zone': unknown time zone 'Europe/Madird' "
            "(use an IANA name such as 'Europe/Madrid')"
        ],
    ),
    (
        "unknown schedule",
        lambda d: nodes(d)["horario"]["rules"][0].update(business_hours="tienda"),
        ["prueba.yaml: node 'horario', field 'rules.0.business_hours': unknown schedule 'tienda'"],
    ),
    (
        "rule without a test",
        lambda d: nodes(d)["horario"].update(rules=[{"next": "menu"}]),
        [
            "prueba.yaml: node 'horario', field 'rules.0': a rule needs a test: customer_found, vip, "
            "open_case, customer_language, language, business_hours, after_hours or holiday"
        ],
    ),
    (
        "collect with max below min",
        collect(min_length=12),
        ["prueba.yaml: node 'dni', field 'max_length': must be at least min_length (12)"],
    ),
    (
        "date check on the wrong length",
        collect(min_length=4, max_length=6, validation="date_ddmmyyyy"),
        [
            "prueba.yaml: node 'dni', field 'validation': a DDMMYYYY date has 8 digits: "
            "min_length and max_length must allow 8"
        ],
    ),
    (
        "unknown validation",
        collect(validation="dni"),
        [
            "prueba.yaml: node 'dni', field 'validation': Input should be 'none', 'luhn' or 'date_ddmmyyyy' "
            "(got 'dni')"
        ],
    ),
    (
        "lookup by digits without a variable",
        add_node("buscar", {"kind": "lookup", "by": "digits", "found": "adios", "not_found": "adios"}),
        ["prueba.yaml: node 'buscar', field 'variable': required when by is 'digits'"],
    ),
    (
        "lookup of a variable nothing collects",
        add_node(
            "buscar",
            {"kind": "lookup", "by": "digits", "variable": "dni", "found": "adios", "not_found": "adios"},
        ),
        ["prueba.yaml: node 'buscar', field 'variable': no collect node sets variable 'dni'"],
    ),
    (
        "language change to a language the flow lacks",
        add_node("frances", {"kind": "set_language", "language": "fr", "next": "adios"}),
        ["prueba.yaml: node 'frances', field 'language': 'fr' is not one of the flow's languages (es, en)"],
    ),
    (
        "link over fax",
        add_node(
            "enlace",
            {
                "kind": "send_link",
                "channel": "fax",
                "link": "x",
                "template": {"es": "a", "en": "b"},
                "prompt": {"es": "a", "en": "b"},
                "next": "adios",
            },
        ),
        ["prueba.yaml: node 'enlace', field 'channel': Input should be 'sms' or 'whatsapp' (got 'fax')"],
    ),
    (
        "link message missing a language",
        add_node(
            "enlace",
            {
                "kind": "send_link",
                "channel": "sms",
                "link": "x",
                "template": {"es": "Su enlace: {link}"},
                "prompt": {"es": "a", "en": "b"},
                "next": "adios",
            },
        ),
        ["prueba.yaml: node 'enlace', field 'template': missing language 'en'"],
    ),
    (
        "version written by hand",
        lambda d: d.update(version="1.0"),
        ["prueba.yaml: field 'version': set by the loader from the file's content; remove it"],
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"), [(c, e) for _, c, e in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_flow_mistake_is_refused_naming_file_node_and_field(
    change: Callable[[dict[str, Any]], object], expected: list[str]
) -> None:
    assert problems_after(change) == expected


def test_base_flow_of_these_tests_is_valid() -> None:
    assert problems_after(lambda d: None) == []


def test_every_mistake_of_a_file_is_reported_at_once() -> None:
    def many(data: dict[str, Any]) -> None:
        nodes(data)["inicio"]["prompt"] = {"es": "Hola"}
        nodes(data)["menu"]["options"][2]["next"] = "facturas"
        nodes(data)["adios"]["prompt"] = {"en": "Bye"}

    assert problems_after(many) == [
        "prueba.yaml: node 'inicio', field 'prompt': missing language 'en'",
        "prueba.yaml: node 'menu', field 'options.2.next': unknown node 'facturas'",
        "prueba.yaml: node 'adios', field 'prompt': missing language 'es'",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b"name: [prueba\n",
            "prueba.yaml: not valid YAML (line 2, column 1): expected ',' or ']', but got '<stream end>'",
        ),
        (b"- a\n- b\n", "prueba.yaml: a flow file is a mapping: name, languages, start, nodes, \u2026"),
        (b"", "prueba.yaml: a flow file is a mapping: name, languages, start, nodes, \u2026"),
        (
            BASE_YAML.encode() + b"  menu: {kind: hangup}\n",
            "prueba.yaml: not valid YAML (line 27, column 3): the key 'menu' is repeated",
        ),
    ],
    ids=["syntax", "list", "empty", "node defined twice"],
)
def test_unreadable_flow_files(content: bytes, expected: str) -> None:
    flow, problems = parse_flow(content, file="prueba.yaml")
    assert flow is None
    assert [str(problem) for problem in problems] == [expected]


def test_yaml_anchors_and_merge_keys_may_share_prompts() -> None:
    content = BASE_YAML.replace(
        '    no_input_prompt: {es: "¿Sigue ahí?", en: "Are you there?"}\n'
        '    no_match_prompt: {es: No le entiendo, en: "Sorry?"}\n',
        "    <<: &reintentos\n"
        '      no_input_prompt: {es: "¿Sigue ahí?", en: "Are you there?"}\n'
        "      no_match_prompt: {es: Perdone, en: Pardon}\n"
        '    no_match_prompt: {es: No le entiendo, en: "Sorry?"}\n',
    )
    assert "<<: &reintentos" in content
    flow, problems = parse_flow(content.encode(), file="prueba.yaml")
    assert problems == [] and flow is not None
    menu = flow.nodes["menu"]
    assert isinstance(menu, MenuNode)
    assert menu.no_input_prompt["en"].text == "Are you there?"
    assert menu.no_match_prompt["es"].text == "No le entiendo"  # the node's own key wins


def test_load_flow_sets_version_to_the_content_hash(tmp_path: Path) -> None:
    path = tmp_path / "prueba.yaml"
    path.write_text(BASE_YAML, encoding="utf-8")
    flow = load_flow(path)
    assert flow.name == "prueba"
    assert flow.version == hashlib.sha256(BASE_YAML.encode()).hexdigest()[:12]
    path.write_text(BASE_YAML + "# a comment changes the version too\n", encoding="utf-8")
    assert load_flow(path).version != flow.version


def test_load_flow_raises_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "roto.yaml"
    path.write_text(BASE_YAML.replace("next: cola", "next: colas"), encoding="utf-8")
    with pytest.raises(FlowError) as caught:
        load_flow(path)
    assert str(caught.value) == "roto.yaml: node 'menu', field 'options.1.next': unknown node 'colas'"
    assert caught.value.problems == [
        FlowProblem("roto.yaml", "menu", "options.1.next", "unknown node 'colas'")
    ]


def test_load_flow_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match=r"^nada\.yaml: cannot read"):
        load_flow(tmp_path / "nada.yaml")


def test_load_flows_by_name_and_check_directory_collects_every_error(tmp_path: Path) -> None:
    (tmp_path / "uno.yaml").write_text(BASE_YAML, encoding="utf-8")
    (tmp_path / "dos.yml").write_text(BASE_YAML.replace("name: prueba", "name: otra"), encoding="utf-8")
    (tmp_path / "notas.txt").write_text("not a flow", encoding="utf-8")
    assert sorted(load_flows(tmp_path)) == ["otra", "prueba"]

    (tmp_path / "roto.yaml").write_text(BASE_YAML.replace("en: Goodbye", "fr: Au revoir"), encoding="utf-8")
    (tmp_path / "copia.yaml").write_text(BASE_YAML.replace("Hello", "Hi"), encoding="utf-8")
    (tmp_path / "vacio.yaml").write_text("", encoding="utf-8")
    flows, problems = check_directory(tmp_path)
    assert sorted(flows) == ["otra", "prueba"]
    assert [str(problem) for problem in problems] == [
        "roto.yaml: node 'adios', field 'prompt': missing language 'en'",
        "roto.yaml: node 'adios', field 'prompt.fr': 'fr' is not one of the flow's languages (es, en)",
        "uno.yaml: field 'name': 'prueba' is also the name in copia.yaml",
        "vacio.yaml: a flow file is a mapping: name, languages, start, nodes, \u2026",
    ]
    with pytest.raises(FlowError) as caught:
        load_flows(tmp_path)
    assert str(caught.value).splitlines() == [str(problem) for problem in problems]


def test_check_directory_of_a_missing_directory(tmp_path: Path) -> None:
    flows, problems = check_directory(tmp_path / "nada")
    assert flows == {} and [p.message for p in problems] == ["not a directory"]


def test_shipped_flows_are_valid_and_use_every_node_kind() -> None:
    flows, problems = check_directory(SHIPPED)
    assert problems == []
    assert sorted(flows) == ["banco_es", "support_en"]
    used = {node.kind for flow in flows.values() for node in flow.nodes.values()}
    assert used == set(NodeKind)
    assert flows["banco_es"].languages == ["es", "en"] and flows["support_en"].languages == ["en"]
    for flow in flows.values():
        content = (SHIPPED / f"{flow.name}.yaml").read_bytes()
        assert flow.version == hashlib.sha256(content).hexdigest()[:12]


def test_shipped_menus_offer_speech_in_every_language() -> None:
    for flow in load_flows(SHIPPED).values():
        for node_id, node in flow.nodes.items():
            if isinstance(node, MenuNode):
                for language in flow.languages:
                    assert all(option.phrases.get(language) for option in node.options.values()), (
                        node_id,
                        language,
                    )
