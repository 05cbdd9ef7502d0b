"""deploy/ checked without a Docker engine or a cluster (neither runs here): every file parses;
the images' command, compose's and the Deployment's are ones the real CLI accepts and that pick the
app from the run; probe and metrics paths answer on a real ``create_app`` server; the ports agree;
the token's Secret key is the env var the server reads."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from shared.cli import build_parser
from shared.config import apply_overrides
from shared.console import APPS, _app_of
from shared.serving import Predictor, ServeConfig, StrictRequest, create_app
from shared.tasks import Task

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILES = ("Dockerfile.cpu", "Dockerfile.cuda")


def dockerfile(name: str) -> dict[str, list[str]]:
    """The instructions of a Dockerfile: ``{"CMD": [...exec form...], "COPY": [first sources], ...}``."""
    text = re.sub(r"\\\n", " ", (DEPLOY / name).read_text())
    out: dict[str, list] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        word, _, rest = line.strip().partition(" ")
        out.setdefault(word.upper(), []).append(rest.strip())
    return out


def exec_form(value: str) -> list[str]:
    argv = json.loads(value)  # the shell form would hide the command from this test: refuse it
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    return argv


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict]:
    docs = [d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    return {d["kind"]: d for d in docs}


@pytest.fixture(scope="module")
def container(k8s) -> dict:
    (only,) = k8s["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


@pytest.fixture(scope="module")
def app_tasks():
    """A real app's task table (the parser the image's command meets), a toy one where the app
    cannot be imported."""
    try:
        from tabular_mining.tasks import TASKS
    except ImportError:
        from shared.config import StrictModel

        class Toy(StrictModel):
            name: str = "toy"

        TASKS = {"toy": Task(config=Toy, help="toy", predictor=lambda cfg, run: None)}
    return TASKS


@pytest.fixture
def fake_run(tmp_path) -> Path:
    """A run directory as ``start_run`` leaves it: the image reads its app from run.json."""
    (tmp_path / "config.yaml").write_text("name: churn\ntask: classify\n")
    (tmp_path / "run.json").write_text(json.dumps({"app": "tabular_mining", "status": "finished"}))
    return tmp_path


def test_every_deploy_file_parses(k8s):
    files = [DEPLOY / "compose.yaml", *(DEPLOY / "k8s").glob("*.yaml")]
    for path in files:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs and all(isinstance(d, dict) for d in docs), path
    assert {"Deployment", "Service"} <= set(k8s)
    for doc in k8s.values():
        assert doc["apiVersion"] and doc["metadata"]["name"]
    for name in DOCKERFILES:
        instructions = dockerfile(name)
        assert instructions["FROM"] and len(instructions["CMD"]) == 1 and len(instructions["ENTRYPOINT"]) == 1


def commands(container) -> dict[str, list[str]]:
    """Every serve command the deploy files give: each image's, compose's, the Deployment's."""
    out = {}
    for name in DOCKERFILES:
        ins = dockerfile(name)
        out[name] = exec_form(ins["ENTRYPOINT"][0]) + exec_form(ins["CMD"][0])
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for service, spec in compose["services"].items():
        out[f"compose:{service}"] = ["mlref", *spec["command"]]
    out["k8s"] = ["mlref", *container["args"]]
    return out


def test_every_serve_command_is_one_the_cli_accepts(container, app_tasks, fake_run):
    for where, argv in commands(container).items():
        assert argv[0] == "mlref", where  # the console script (pyproject.toml [project.scripts])
        args = [fake_run if a == "/srv/run" else a for a in argv[1:]]
        args = [str(a) for a in args]
        app, named = _app_of(args, "mlref")
        assert (app, named) == ("tabular_mining", False), where  # the app comes from the run
        parsed = build_parser(app, app_tasks, None).parse_args(args)
        assert parsed.stage == "serve" and parsed.run == str(fake_run) and parsed.host == "0.0.0.0", where
        serve = apply_overrides({}, parsed.overrides).get("serve", {})
        ServeConfig.model_validate(serve)  # the overrides are valid serve settings
        assert "/srv/run" in argv, where


def port_of(argv: list[str]) -> int:
    return int(argv[argv.index("--port") + 1])


def test_ports_agree(k8s, container):
    ports = {where: port_of(argv) for where, argv in commands(container).items()}
    for name in DOCKERFILES:
        ports[f"{name} EXPOSE"] = int(dockerfile(name)["EXPOSE"][0])
    (http,) = container["ports"]
    ports["containerPort"] = http["containerPort"]
    annotations = k8s["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    ports["prometheus.io/port"] = int(annotations["prometheus.io/port"])
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for service, spec in compose["services"].items():
        ports[f"compose:{service} ports"] = int(spec["ports"][0].rsplit(":", 1)[1])
    assert len(set(ports.values())) == 1, ports
    (service_port,) = k8s["Service"]["spec"]["ports"]
    assert service_port["targetPort"] == http["name"]
    assert k8s["Service"]["spec"]["selector"].items() <= \
        k8s["Deployment"]["spec"]["template"]["metadata"]["labels"].items()


class Body(StrictRequest):
    instances: list[float]


class Doubler(Predictor):
    request_model = Body

    def predict_batch(self, items):
        return [2 * x for x in items]

    def example(self):
        return {"instances": [1.0]}


def test_probes_and_metrics_answer_on_a_real_server_with_the_token_on(k8s, container, monkeypatch):
    """The manifest's probe and scrape paths, on the server the image runs, configured with the
    manifest's own overrides and the token set: probes and /metrics answer without the token
    (kubelet and Prometheus send none), /predict does not."""
    env = container["env"][0]
    monkeypatch.setenv(env["name"], "s3cret")
    overrides = [a for a in container["args"] if "=" in a and not a.startswith("-")]
    cfg = ServeConfig.model_validate({**apply_overrides({}, overrides)["serve"], "load_in_background": False})
    app = create_app(Doubler, cfg)
    routes = {route.path for route in app.routes}
    paths = {probe: container[probe]["httpGet"]["path"] for probe in ("livenessProbe", "readinessProbe")}
    metrics = k8s["Deployment"]["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]
    assert paths == {"livenessProbe": "/livez", "readinessProbe": "/readyz"}
    assert {*paths.values(), metrics} <= routes
    with TestClient(app) as client:
        for path in (*paths.values(), metrics):
            assert client.get(path).status_code == 200, path
        assert "# TYPE" in client.get(metrics).text  # Prometheus' text format
        assert client.post("/predict", json={"instances": [2.0]}).status_code == 401
        ok = client.post("/predict", json={"instances": [2.0]}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["predictions"] == [4.0]


def test_token_secret_key_is_the_env_var_the_server_reads(container):
    (env,) = container["env"]
    ref = env["valueFrom"]["secretKeyRef"]
    assert env["name"] == ServeConfig().auth_token_env == ref["key"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for spec in compose["services"].values():
        assert ServeConfig().auth_token_env in spec["environment"]
    # the command the guide and the manifest give for making the Secret names the same secret and key
    wanted = f"kubectl create secret generic {ref['name']} --from-literal={ref['key']}="
    for text in ((ROOT / "docs" / "deployment.md").read_text(), (DEPLOY / "k8s" / "deployment.yaml").read_text()):
        assert wanted in text


def test_resources_and_scrape_annotations(k8s, container):
    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), kind
    annotations = k8s["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"


def test_images_copy_every_package_the_wheel_ships():
    needed = {"pyproject.toml", "setup.py", "README.md", "configs", "shared", *APPS.values()}
    for name in DOCKERFILES:
        copied = {src for line in dockerfile(name)["COPY"] for src in line.split()[:-1]}
        assert needed <= copied, (name, needed - copied)
