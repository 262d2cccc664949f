"""files.info parsed into our own type (pure)."""

from __future__ import annotations

from bot.adapters.slack import SlackFile, parse_file


def test_files_info_becomes_a_slack_file_with_its_share_per_channel() -> None:
    info = {
        "id": "F1",
        "name": "cat.png",
        "mimetype": "image/png",
        "filetype": "png",
        "url_private": "https://files.slack.com/files-pri/T1-F1/cat.png",
        "url_private_download": "https://files.slack.com/files-pri/T1-F1/download/cat.png",
        "shares": {
            "public": {"C1": [{"ts": "1.1"}, {"ts": "1.2"}]},
            "private": {"C1": [{"ts": "9.9"}], "G2": [{"ts": "2.1"}]},
        },
    }
    file = parse_file(info)
    assert file == SlackFile(
        id="F1",
        name="cat.png",
        mimetype="image/png",
        filetype="png",
        download_url="https://files.slack.com/files-pri/T1-F1/download/cat.png",
        shares={"C1": "1.1", "G2": "2.1"},
    )
    assert (file.share_ts("C1"), file.share_ts("G2"), file.share_ts("C3")) == ("1.1", "2.1", None)
    assert file.share_ts(None) is None


def test_a_malformed_files_info_leaves_out_what_it_cannot_read() -> None:
    file = parse_file(
        {"id": "F2", "name": 7, "url_private": "https://x/f", "shares": {"public": {"C1": "no"}}}
    )
    assert file == SlackFile(id="F2", download_url="https://x/f")
