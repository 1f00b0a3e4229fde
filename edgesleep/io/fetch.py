"""Download Sleep-EDF SC-20 from PhysioNet into the dataset layout.

Every file is checked against the ``SHA256SUMS.txt`` that PhysioNet publishes for the
dataset version (fetched at run time); hypnograms are also checked against the hashes
pinned in the package. Interrupted downloads resume with HTTP Range requests (a server
that ignores Range gets a fresh download). Lights-off/on come from the shipped table.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from edgesleep.errors import InputError
from edgesleep.io import edf
from edgesleep.io.dataset import Dataset, Entry, read_dataset, write_dataset
from edgesleep.io.sleepedf import pinned_sha256, records

log = logging.getLogger("edgesleep")

SLEEP_EDF_URL = "https://physionet.org/files/sleep-edfx/1.0.0/"
DATASETS = ("sleep-edf", "walch", "slpdb", "cinc2018", "hmc")  # what `data fetch` downloads
SUBDIR = "sleep-cassette"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0
MAX_LISTING_BYTES = 16 * 2**20  # a SHA256SUMS.txt: PhysioNet's largest are well under 1 MB


def parse_subjects(spec: str) -> list[int]:
    """Parse "0-19", "3", "0,4,7-9" into sorted subject numbers."""
    out: set[int] = set()
    for part in spec.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise InputError(
                f"--subjects {spec!r}: expected numbers and ranges such as 0-19 or 0,3,5-7"
            )
        first = int(match.group(1))
        last = int(match.group(2) or first)
        out.update(range(first, last + 1))
    known = {r.subject for r in records().values()}
    unknown = sorted(out - known)
    if unknown:
        raise InputError(
            f"--subjects: {unknown} are not in SC-20 (subjects {min(known)}-{max(known)}); "
            "lights-on times are only known for these"
        )
    return sorted(out)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


class _SameHost(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to the same host and port (http may become https): a
    redirect elsewhere is refused, not followed silently."""

    def redirect_request(  # type: ignore[no-untyped-def]
        self, req, fp, code, msg, headers, newurl
    ):
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        same = (old.hostname, old.port) == (new.hostname, new.port) or (
            old.hostname == new.hostname and (old.scheme, new.scheme) == ("http", "https")
        )
        if not same or (old.scheme, new.scheme) == ("https", "http"):
            raise InputError(
                f"download refused: {req.full_url} redirects to another host ({newurl}); "
                "edgesleep fetches only from the host you named (pass --base-url to choose it)"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameHost)


def _open_url(url: str, offset: int = 0, method: str = "GET"):  # type: ignore[no-untyped-def]
    request = urllib.request.Request(url, headers={"User-Agent": "edgesleep"}, method=method)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        return _OPENER.open(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return None  # the partial file already holds everything
        raise InputError(f"download failed: HTTP {err.code} {err.reason} for {url}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise InputError(
            f"download failed: cannot reach {url} ({reason}); check the network and run the "
            "same command again to resume"
        ) from None


def download(url: str, dest: Path, sha256: str) -> Path:
    """Download ``url`` to ``dest``, resuming a ``.part`` file, and verify its sha256.

    Raises
    ------
    InputError
        On HTTP errors or a checksum mismatch (the bad file is removed).
    """
    if dest.is_file() and sha256_of(dest) == sha256:
        log.info("%s: present, checksum ok", dest.name)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    response = _open_url(url, offset)
    if response is not None:
        with response:
            resumed = offset and response.status == 206
            if offset and not resumed:
                log.info("%s: server ignored the Range request; downloading from the start", url)
            log.info(
                "%s: %s at byte %d",
                dest.name,
                "resuming" if resumed else "downloading",
                offset if resumed else 0,
            )
            with part.open("ab" if resumed else "wb") as fh:
                for block in iter(lambda: response.read(CHUNK_BYTES), b""):
                    fh.write(block)
    got = sha256_of(part)
    if got != sha256:
        part.unlink()
        raise InputError(
            f"{dest.name}: checksum mismatch (expected {sha256}, got {got}); the file was "
            "removed, run the same command again"
        )
    part.replace(dest)
    return dest


def parse_sums(text: str) -> dict[str, str]:
    """A ``sha256sum`` listing (``<64 hex> [*]path`` per line) -> path -> digest; other
    lines are skipped."""
    sums = {}
    for line in text.splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2 and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            sums[parts[1].strip().lstrip("*")] = parts[0]
    return sums


def fetch_checksums(base_url: str) -> dict[str, str]:
    """PhysioNet's ``SHA256SUMS.txt`` for the dataset version: path -> sha256."""
    url = base_url + "SHA256SUMS.txt"
    response = _open_url(url)
    with response:
        raw = response.read(MAX_LISTING_BYTES + 1)
    if len(raw) > MAX_LISTING_BYTES:
        raise InputError(
            f"{url}: longer than {MAX_LISTING_BYTES // 2**20} MB; PhysioNet's listings are "
            "far smaller (is the base URL right?)"
        )
    sums = parse_sums(raw.decode("utf-8", errors="replace"))
    if not sums:
        raise InputError(f"{url}: no sha256 lines found; is the base URL right?")
    return sums


def fetch_sleep_edf(out: Path, subjects: list[int], base_url: str = SLEEP_EDF_URL) -> Dataset:
    """Download the PSG and hypnogram of every night of ``subjects`` and write the layout.

    Parameters
    ----------
    out : Path
        Dataset directory (created; existing complete files are kept).
    subjects : list of int
        SC-20 subject numbers (0-19).
    base_url : str
        Root of the dataset version (PhysioNet or a mirror), ending in "/".

    Returns
    -------
    Dataset
    """
    if not base_url.endswith("/"):
        base_url += "/"
    sums = fetch_checksums(base_url)
    pins = pinned_sha256()
    entries = []
    chosen = [r for r in records().values() if r.subject in subjects]
    for rec in chosen:
        paths = {}
        for kind, name in (("psg", rec.psg_file), ("hypnograms", rec.hypnogram_file)):
            key = f"{SUBDIR}/{name}"
            if key not in sums:
                raise InputError(f"{base_url}SHA256SUMS.txt lists no {key}; is the base URL right?")
            if kind == "hypnograms" and sums[key] != pins[name]:
                raise InputError(
                    f"{name}: the server's SHA256SUMS ({sums[key]}) disagrees with the hash "
                    f"pinned in edgesleep ({pins[name]}); refusing to continue"
                )
            paths[kind] = download(base_url + key, out / kind / name, sums[key])
        start = edf.header(paths["psg"])["start"]
        lights_off_s, lights_on_s = rec.in_bed_s(start)  # type: ignore[arg-type]
        entries.append(
            Entry(
                record=rec.record,
                subject=str(rec.subject),
                night=rec.night,
                psg=f"psg/{rec.psg_file}",
                hypnogram=f"hypnograms/{rec.hypnogram_file}",
                lights_off_s=lights_off_s,
                lights_on_s=lights_on_s,
            )
        )
    write_dataset(
        out,
        entries,
        {
            "name": "sleep-edf-sc",
            "synthetic": False,
            "source": base_url,
            "citation": "Kemp B et al. IEEE-BME 47(9):1185-1194 (2000); Goldberger AL et al. "
            "Circulation 101(23):e215-e220 (2000). ODC-By 1.0.",
        },
    )
    return read_dataset(out)


WALCH_URL = "https://physionet.org/files/sleep-accel/1.0.0/"


def fetch_walch(out: Path, subjects: list[str] | None = None, base_url: str = WALCH_URL) -> Dataset:
    """Download Walch et al.'s heart rate and labels (PhysioNet sleep-accel; the motion and
    step files are not needed), verify each file's sha256 against the server's
    ``SHA256SUMS.txt``, resume partial files, and import them into the dataset layout
    (:func:`edgesleep.io.imports.import_walch`); the downloads stay in ``out/raw``.

    Parameters
    ----------
    subjects : subject ids (default: every id with a heart-rate file)

    Raises
    ------
    InputError
        An unknown subject (the known ones are named), an HTTP error, a checksum mismatch.
    """
    from edgesleep.io.imports import import_walch

    base_url, sums, chosen = listed_choice(
        base_url, r"heart_rate/(\w+)_heartrate\.txt", subjects, "walch: no subjects"
    )
    keys = [
        key
        for sid in chosen
        for key in (f"heart_rate/{sid}_heartrate.txt", f"labels/{sid}_labeled_sleep.txt")
    ]
    raw = download_listed(base_url, sums, keys, out / "raw")
    (raw / "SUBJECTS").write_text("\n".join(chosen) + "\n")
    return import_walch(raw, out)


def listed_choice(
    base_url: str, pattern: str, chosen: list[str] | None, unknown_what: str
) -> tuple[str, dict[str, str], list[str]]:
    """The server's checksums and the ids to fetch: the ids are ``pattern``'s group in the
    paths ``SHA256SUMS.txt`` lists; ``chosen`` (default: all of them) must be among them.

    Returns
    -------
    base_url (ending in "/"), sums (path -> sha256), chosen ids

    Raises
    ------
    InputError
        The list names no such path, or an id is not there (the known ones are named).
    """
    if not base_url.endswith("/"):
        base_url += "/"
    sums = fetch_checksums(base_url)
    known = sorted(m[1] for key in sums if (m := re.fullmatch(pattern, key)))
    if not known:
        raise InputError(f"{base_url}SHA256SUMS.txt lists no {pattern} files; is the URL right?")
    unknown = sorted(set(chosen or known) - set(known))
    if unknown:
        raise InputError(f"{unknown_what} {unknown}; there are {known}")
    return base_url, sums, list(chosen or known)


def download_listed(base_url: str, sums: dict[str, str], keys: list[str], raw: Path) -> Path:
    """Download ``keys`` (paths under ``base_url``, each verified against ``sums``) into
    ``raw`` and write ``raw/SHA256SUMS`` for them (the importer checks it again)."""
    lines = []
    for key in keys:
        if key not in sums:
            raise InputError(f"{base_url}SHA256SUMS.txt lists no {key}; is the URL right?")
        download(base_url + key, raw / key, sums[key])
        lines.append(f"{sums[key]} {key}")
    (raw / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return raw


SLPDB_URL = "https://physionet.org/files/slpdb/1.0.0/"


def fetch_slpdb(
    out: Path, records: list[str] | None = None, base_url: str = SLPDB_URL, signals: bool = False
) -> Dataset:
    """Download slpdb's WFDB records (header, beat and stage annotations; the 250-Hz
    signals too with ``signals``), verify each file's sha256 against the server's
    ``SHA256SUMS.txt``, resume partial files, and import them into the dataset layout
    (:func:`edgesleep.io.imports.import_slpdb`); the downloads stay in ``out/raw``.

    Parameters
    ----------
    records : record names such as "slp01a" (default: every record with stage annotations)

    Raises
    ------
    InputError
        An unknown record (the known ones are named), an HTTP error, a checksum mismatch.
    """
    from edgesleep.io.imports import import_slpdb

    base_url, sums, chosen = listed_choice(base_url, r"(\w+)\.st", records, "slpdb: no records")
    exts = ("hea", "ecg", "st", "dat") if signals else ("hea", "ecg", "st")
    raw = download_listed(base_url, sums, [f"{r}.{e}" for r in chosen for e in exts], out / "raw")
    (raw / "RECORDS").write_text("\n".join(chosen) + "\n")
    return import_slpdb(raw, out)


CINC2018_URL = "https://physionet.org/files/challenge-2018/1.0.0/"
HMC_URL = "https://physionet.org/files/hmc-sleep-staging/1.1/"
COHORT_URLS = {"cinc2018": CINC2018_URL, "hmc": HMC_URL}
# per cohort: the listed path that names a record, and the files of a record
COHORT_FILES = {
    "cinc2018": (r"training/(tr\d{2}-\d{4})/\1\.hea",
                 ("training/{0}/{0}.hea", "training/{0}/{0}.mat", "training/{0}/{0}.arousal")),
    "hmc": (r"recordings/(SN\d{3})\.edf",
            ("recordings/{0}.edf", "recordings/{0}_sleepscoring.edf")),
}  # fmt: skip
HEAD_THREADS = 8


@dataclass(frozen=True)
class Plan:
    """What a fetch of a cohort will download, known before it does.

    Attributes
    ----------
    dataset : "cinc2018" or "hmc"
    base_url : the dataset version's root, ending in "/"
    records : the records chosen
    files : (path under ``base_url``, sha256, bytes or None where the server gave no size)
    """

    dataset: str
    base_url: str
    records: list[str]
    files: list[tuple[str, str, int | None]]

    @property
    def n_bytes(self) -> int:
        """Bytes of the files whose size the server gave."""
        return sum(size or 0 for _, _, size in self.files)

    def describe(self) -> str:
        unknown = sum(size is None for _, _, size in self.files)
        more = f" ({unknown} of unknown size)" if unknown else ""
        return (f"{self.dataset}: {len(self.records)} records, {len(self.files)} files, "
                f"{self.n_bytes / 1e9:.2f} GB{more} from {self.base_url}")  # fmt: skip


def content_length(url: str) -> int | None:
    """The size the server gives for ``url`` (a HEAD request), None if it gives none or
    refuses HEAD (the download itself then says what is wrong)."""
    try:
        response = _open_url(url, method="HEAD")
    except InputError as err:
        log.info("%s: no size (%s)", url, err)
        return None
    with response:
        length = response.headers.get("Content-Length")
    return int(length) if length is not None and length.isdigit() else None


def plan_cohort(
    dataset: str, base_url: str, records: list[str] | None = None, count: int | None = None
) -> Plan:
    """The files of ``records`` (default: every record the server's ``SHA256SUMS.txt``
    lists; then the first ``count`` of them), with their sizes from HEAD requests, and the
    licence file if it is listed.

    Raises
    ------
    InputError
        An unknown record (the known ones are named), a count below 1, an HTTP error.
    """
    if count is not None and count < 1:
        raise InputError(f"--count {count}: give at least 1")
    pattern, templates = COHORT_FILES[dataset]
    base_url, sums, chosen = listed_choice(base_url, pattern, records, f"{dataset}: no records")
    chosen = sorted(chosen)[:count] if count is not None else sorted(chosen)
    keys = [t.format(r) for r in chosen for t in templates]
    keys += [k for k in ("LICENSE.txt",) if k in sums]
    missing = [k for k in keys if k not in sums]
    if missing:
        raise InputError(f"{base_url}SHA256SUMS.txt lists no {missing[:3]}; is the URL right?")
    with ThreadPoolExecutor(HEAD_THREADS) as pool:
        sizes = list(pool.map(lambda key: content_length(base_url + key), keys))
    return Plan(
        dataset, base_url, chosen, [(k, sums[k], n) for k, n in zip(keys, sizes, strict=True)]
    )


def fetch_cohort(plan: Plan, out: Path, require: Sequence[str] = ()) -> Dataset:
    """Download a :func:`plan_cohort` (each file verified against the server's sha256,
    partial files resumed) into ``out/raw`` in the original layout, then import it
    (:func:`edgesleep.io.cinc2018.import_cinc2018`, :func:`edgesleep.io.hmc.import_hmc`).

    Raises
    ------
    InputError
        Not enough free disk for the plan, an HTTP error, a checksum mismatch.
    """
    from edgesleep.io.cinc2018 import import_cinc2018
    from edgesleep.io.hmc import import_hmc

    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    have = sum((raw / key).stat().st_size for key, _, _ in plan.files if (raw / key).is_file())
    free = shutil.disk_usage(raw).free
    if plan.n_bytes - have > free:
        raise InputError(
            f"{plan.describe()}: {(plan.n_bytes - have) / 1e9:.2f} GB still to download but "
            f"{free / 1e9:.2f} GB free under {raw}; free space or fetch fewer records (--count)"
        )
    sums = {key: digest for key, digest, _ in plan.files}
    download_listed(plan.base_url, sums, list(sums), raw)
    importer = import_cinc2018 if plan.dataset == "cinc2018" else import_hmc
    return importer(raw, out, require=require)
