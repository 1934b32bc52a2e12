"""Guards of an image reader, shared by the dataset readers and the query readers of
``astroclr similar --image``: sizes checked before anything is decoded, a truncated or corrupt
file an error rather than a warning, library warnings kept out of the output.

- :func:`truncation_is_error`: astropy only *warns* that a file "may have been truncated";
  inside the block that is an exception, and harmless header-fixing warnings are silenced.
- :func:`check_fits_sizes`: every HDU's header is read (no data) and the bytes it declares are
  compared with the file's size (an uncompressed file cannot hold more than it is) and with a
  cap on pixels, so a 200-byte header declaring 112 GiB is refused before numpy allocates it;
  a gzipped file is decompressed once to its end (astropy reads a damaged stream silently).
- :func:`pil_guard`: PIL's decompression-bomb *warning* (between 1x and 2x its limit) made an
  error like its bomb error, and truncated-image warnings silenced (the read fails instead).
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Iterator

from astroclr.files import FITS_SUFFIXES
from astroclr.plugin.specs import AstroclrError

#: the most pixels one HDU (or composite) may declare: 2**28 (1 GiB of float32)
MAX_PIXELS = 2 ** 28
COMPRESSED_SUFFIXES = (".gz", ".fz", ".bz2", ".zip")
#: the names a FITS cutout may have: plain, gzipped, or any fpack-compressed file
FITS_NAMES = (*FITS_SUFFIXES, ".fits.gz", ".fit.gz", ".fz")


def is_fits(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(FITS_NAMES)


@contextlib.contextmanager
def truncation_is_error() -> Iterator[None]:
    """Turn astropy's "may have been truncated" warning into an exception for the block."""
    from astropy.io.fits.verify import VerifyWarning
    from astropy.wcs import FITSFixedWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*truncated.*")
        warnings.filterwarnings("ignore", category=FITSFixedWarning)
        warnings.filterwarnings("ignore", category=VerifyWarning)
        yield


def _declared(header: object) -> tuple[int, int]:
    """(pixels, bytes) an HDU's header declares for its data."""
    get = header.get  # type: ignore[attr-defined]
    naxis = int(get("NAXIS", 0) or 0)
    if naxis <= 0:
        return 0, 0
    pixels = 1
    for i in range(1, naxis + 1):
        pixels *= max(0, int(get(f"NAXIS{i}", 0) or 0))
    pixels *= max(1, int(get("GCOUNT", 1) or 1))
    return pixels, pixels * abs(int(get("BITPIX", 8) or 8)) // 8 + int(get("PCOUNT", 0) or 0)


def check_fits_sizes(path: str | Path, max_pixels: int = MAX_PIXELS) -> None:
    """A one-line error, before any data is read, when an HDU of ``path`` declares more
    pixels than ``max_pixels`` or (uncompressed) more bytes than the file holds."""
    from astropy.io import fits

    path = Path(path)
    size = path.stat().st_size
    compressed = path.name.lower().endswith(COMPRESSED_SUFFIXES)
    total = 0
    try:
        with truncation_is_error(), fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            for hdu in hdul:
                pixels, nbytes = _declared(hdu.header)
                total += nbytes
                if pixels > max_pixels:
                    raise AstroclrError(f"image {path}: a header declares {pixels:,} pixels "
                                        f"({nbytes / 2**30:.1f} GiB), more than the "
                                        f"{max_pixels:,} an image may have")
                if not compressed and total > size:
                    raise AstroclrError(f"image {path}: its headers declare {total:,} bytes of "
                                        f"data but the file holds {size:,}: it is truncated or "
                                        f"forged")
        if path.name.lower().endswith(".gz"):
            _check_gzip(path, total, max_pixels * 8)
    except AstroclrError:
        raise
    except Exception as exc:  # OSError, ValueError, EOFError, zlib.error, a warning ...
        raise AstroclrError(f"cannot read image {path}: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:160]}") from None


def _check_gzip(path: Path, declared: int, cap: int) -> None:
    """A gzipped FITS file decompressed once, in chunks, to its end: astropy reads a damaged
    stream (garbage after a valid start) without a word, and pads what is missing."""
    import gzip

    size = 0
    with gzip.open(path, "rb") as fh:  # a bad CRC, trailing garbage or a cut stream raise
        while block := fh.read(1 << 20):
            size += len(block)
            if size > cap:
                raise AstroclrError(f"image {path} decompresses to more than {cap:,} bytes")
    if size < declared:
        raise AstroclrError(f"image {path}: its headers declare {declared:,} bytes of data but "
                            f"it decompresses to {size:,}: it is truncated")


@contextlib.contextmanager
def pil_guard() -> Iterator[None]:
    """PIL's decompression-bomb warning as an error, its truncation warnings silenced."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", message=".*[Tt]runcated.*")
        yield


def check_query_file(path: str | Path) -> None:
    """The guards every query image passes before any reader decodes it (the core's or a
    dataset plugin's ``read_image``): a FITS file's header sizes against the file and the cap,
    a gzipped one decompressed to its end; an image's pixel count from its header."""
    path = Path(path)
    if not path.is_file():
        return  # the reader says it does not exist
    if is_fits(path):
        check_fits_sizes(path)
        return
    from PIL import Image

    try:
        with pil_guard(), Image.open(path) as im:  # the header only: nothing decoded yet
            width, height = im.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise AstroclrError(f"image {path} is too large to decode ({exc}): a decompression "
                            f"bomb or not a cutout") from None
    except Exception:  # noqa: BLE001 - not an image PIL knows: the reader says what it takes
        return
    if width * height > MAX_PIXELS:
        raise AstroclrError(f"image {path} is too large to decode ({width}x{height} px): a "
                            f"decompression bomb or not a cutout")
