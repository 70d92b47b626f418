"""The Host header is never echoed (issue 13 F9), and deployments can name their hosts."""

from consult import create_app


def test_a_foreign_host_header_is_not_echoed_into_the_page_or_its_policy(app, client):
    r = client.get("/login", headers={"Host": "evil.example"})
    assert "evil.example" not in r.headers["Content-Security-Policy"]
    assert "evil.example" not in r.get_data(as_text=True)


def test_trusted_hosts_refuse_any_other_host(app, tmp_path):
    strict = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'hosts.db'}",
            "TRUSTED_HOSTS": ["consult.example", "localhost"],
        }
    )
    client = strict.test_client()
    assert client.get("/login", headers={"Host": "consult.example"}).status_code == 200
    assert client.get("/login", headers={"Host": "evil.example"}).status_code == 400
