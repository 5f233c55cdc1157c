"""``optical serve``: the JSON API over a real local server, and the page in a real headless chromium."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
import uvicorn
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from optical.cli import build_parser, main
from optical.models.tiny import make_tiny_model
from optical.serve.app import ServeConfig, create_app

N_DOCS = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory, mirror_dir):
    """The app on 127.0.0.1 at a free port, over a small Greek-English collection, zero-shot with a tiny teacher."""
    root = tmp_path_factory.mktemp("serve")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPTICAL_CACHE_DIR", str(root / "cache"))
        patch.setenv("OPTICAL_DATA_DIR", str(mirror_dir))
        teacher = make_tiny_model(root / "teacher", seed=0)
        with open(mirror_dir / "bitext/ntrex128/en-el.tsv", encoding="utf-8") as handle:
            pairs = [line.rstrip("\n").split("\t") for line, _ in zip(handle, range(N_DOCS))]
        beir = root / "news"
        beir.mkdir()
        docs = [{"_id": f"d{i}", "title": "", "text": en} for i, (en, _) in enumerate(pairs)]
        (beir / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
        app = create_app(ServeConfig({"news": str(beir)}, ["zero-shot"], teacher=str(teacher), top_k=5))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        runner = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not runner.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        yield {"url": f"http://127.0.0.1:{port}", "queries": [el for _, el in pairs], "root": root, "teacher": teacher}
        runner.should_exit = True
        thread.join(timeout=10)


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_api_searches_with_both_scores_and_aligns(server):
    url, query = server["url"], server["queries"][3]
    status, result = post(f"{url}/api/search", {"query": query, "collection": "news", "student": "zero-shot"})
    assert status == 200 and result["query"] == query and len(result["hits"]) == 5
    assert all(isinstance(hit["dense"], float) and isinstance(hit["maxsim"], float) for hit in result["hits"])
    assert [hit["maxsim"] for hit in result["hits"]] == sorted((hit["maxsim"] for hit in result["hits"]), reverse=True)
    doc = result["hits"][0]["doc_id"]
    status, plan = post(f"{url}/api/align", {"query": query, "collection": "news", "student": "zero-shot", "doc_id": doc})
    assert status == 200 and len(plan["plan"]) == len(plan["foreign_tokens"])
    assert len(plan["plan"][0]) == len(plan["english_tokens"]) and sum(map(sum, plan["plan"])) == pytest.approx(1, abs=1e-3)


@pytest.mark.parametrize(
    "body, message",
    [
        ({"query": "  ", "collection": "news", "student": "zero-shot"}, "the query is empty"),
        ({"query": "x", "collection": "other", "student": "zero-shot"}, "unknown collection 'other'"),
        ({"query": "x", "collection": "news", "student": "runs/x"}, "unknown student 'runs/x'"),
    ],
)
def test_bad_requests_are_one_line_400s(server, body, message):
    status, answer = post(f"{server['url']}/api/search", body)
    assert status == 400 and message in answer["detail"] and "\n" not in answer["detail"]


def test_the_page_searches_and_shows_an_alignment_in_a_browser(server, browser):
    browser.get(server["url"] + "/")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda page: page.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    assert [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#collection option")] == ["news"]
    browser.find_element(By.ID, "query").send_keys(server["queries"][7])
    browser.find_element(By.ID, "search-button").click()
    wait.until(expected_conditions.visibility_of_element_located((By.ID, "results")))
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr.hit")
    assert len(rows) == 5
    for row in rows:  # dense and MaxSim side by side
        float(row.find_element(By.CSS_SELECTOR, "td.dense").text)
        float(row.find_element(By.CSS_SELECTOR, "td.maxsim").text)
    assert "5 documents for" in browser.find_element(By.ID, "status").text
    rows[1].find_element(By.CSS_SELECTOR, "button.align-button").click()
    wait.until(expected_conditions.visibility_of_element_located((By.ID, "alignment")))
    columns = browser.find_elements(By.CSS_SELECTOR, "#heatmap th.column")
    cells = browser.find_elements(By.CSS_SELECTOR, "#heatmap td.mass")
    assert columns and cells and len(cells) % len(columns) == 0
    assert rows[1].get_attribute("data-doc-id") in browser.find_element(By.ID, "alignment-title").text
    # Every resource the page loaded came from the server itself: no CDN, no call off the machine.
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(name.startswith(server["url"] + "/") for name in loaded), loaded


def test_the_page_shows_an_error_line_for_an_empty_query(server, browser):
    browser.get(server["url"] + "/")
    WebDriverWait(browser, 60).until(lambda page: page.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    browser.find_element(By.ID, "search-button").click()
    WebDriverWait(browser, 60).until(lambda page: "error:" in page.find_element(By.ID, "status").text)
    assert "the query is empty" in browser.find_element(By.ID, "status").text


def test_serve_binds_this_machine_only_by_default_and_refuses_bad_input(server, capsys):
    args = build_parser().parse_args(["serve", "--collection", "x"])
    assert args.host == "127.0.0.1"
    assert main(["serve", "--collection", str(server["root"] / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such directory" in err
    news = str(server["root"] / "news")
    assert main(["serve", "--collection", f"a={news}", "--collection", f"a={news}"]) == 2
    assert "given twice" in capsys.readouterr().err
    assert main(["serve", "--collection", news, "--student", str(server["root"] / "no-run")]) == 2
    assert "no such directory" in capsys.readouterr().err
