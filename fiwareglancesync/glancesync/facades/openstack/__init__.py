"""The real facade: Keystone (v3, or v2.0 when configured) and Glance v2.

This is the only package of the engine that imports ``glanceclient`` (``keystoneauth1`` is also
loaded lazily by :mod:`...keystone` and by the REST service's token validation), and only for
its exception classes, at the first failure (:data:`.library_errors.glance_exc`: importing
glanceclient costs ~0.15 CPU-s, a few per cent of a whole sync.py run).  One
:class:`OpenStackFacade` serves one target (one credential); the first time it needs one it
opens a single keystoneauth session, with the password plugin and versioned URL that
:mod:`...keystone` builds for the target, and it keeps one Glance HTTP client per region on top
of it (:class:`.http.GlanceHTTP`: glanceclient's session client, the same requests and answers,
rewritten on keystoneauth's Adapter).

Modules: :mod:`.facade` (:class:`OpenStackFacade`: session, clients, listing, metadata,
deletion), :mod:`.uploads`, :mod:`.downloads`, :mod:`.imports` (the data transfers),
:mod:`.region_glance` (one region's Glance calls with retries and clean-up), :mod:`.retry` (the
retry policy), :mod:`.http` (the Glance HTTP client), :mod:`.errors` (translation and secret
scrubbing), :mod:`.library_errors` (what the client libraries raise).

What it guarantees beyond :mod:`..base`:

* Regions are the regions that have a **public** ``image`` endpoint in the target's catalog.
* Timeouts: every connection attempt may take :data:`CONNECT_TIMEOUT` (10 s); every API call
  waits at most the target's ``http_timeout`` (default 60 s) for its answer; a data transfer
  (upload or download) fails when it makes no progress for ``http_timeout`` seconds (a socket
  timeout per read/send, not a bound on the whole transfer).  A listing follows Glance's pages
  and is also bounded, as a whole, by the target's ``list_images_timeout``: no page request
  waits past it.  It is Glance's default listing: every owner the credential may see, every
  status but ``deleted``, and not the images their owners hid with ``os_hidden``.
* Retries (README "Retries and timeouts", :mod:`.retry`), at most the target's ``retries``
  times each, after an exponential backoff with jitter (:func:`backoff`), one WARNING per
  retry naming the region (or target), the cause and the operation (``RegionA: HTTP 503 from
  Glance while listing images; retry 1 of 3 in 0.7 s``):

  - reads (token and catalog, listing pages, image GETs) and idempotent writes (PATCH,
    DELETE) on a transient failure (:func:`transient_cause`: connection failure or reset,
    timeout, HTTP 502/503/504, from Glance or from Keystone);
  - the ``POST`` that creates an image only when nothing can have been created: an HTTP 503
    answer, or a connection that was never established;
  - an upload whose data ``PUT`` failed transiently: the copy is deleted and the whole upload
    starts again from the beginning (a new create, a fresh ``source.open()``);
  - a download (:meth:`OpenStackFacade.download_image`) that breaks mid-stream continues with
    an HTTP ``Range: bytes=<n>-`` request from the byte reached, so its consumer sees one
    continuous stream (a server that ignores ``Range`` and sends everything again has the
    bytes already delivered skipped).

  The retries are ours, not keystoneauth1's (:mod:`.retry` says why).
* Records map to :class:`Image` as :mod:`..glance_records` describes; metadata updates send a
  JSON-patch of the differences only (name, visibility, custom properties), never other fields.
* Uploads are streamed in chunks of :data:`~..base.CHUNK_SIZE` through a
  :class:`~..verifying.VerifyingReader` (size; MD5 + SHA-512 on the client only when the master
  lacks one of them: :func:`client_hashing`), then the region's own checksum/hash/size are
  checked against the master's (or against what the client hashed:
  :func:`~..verifying.check_copy`).  The copy is created private, unprotected and marked
  ``glancesync_in_progress = <this process's identity>``; only once its data checked out does
  one PATCH remove the marker and give it the master's visibility and protection.  Any failure
  after the create deletes it again, so no ``queued``/``saving``/``killed`` image is left
  behind (and should this process die first, the marker lets a later sync delete it).  The
  :class:`~..base.Uploaded` returned carries the bytes read from the source, by every attempt.
* glance-download imports (README "How copies are made", :mod:`.imports`):
  :meth:`OpenStackFacade.import_methods` reads ``GET /v2/info/import`` once per region;
  :meth:`~OpenStackFacade.start_import` creates the copy as an upload does (queued, private,
  marked) and posts the import; the engine starts a region's imports together, then
  :meth:`~OpenStackFacade.finish_import` polls each (backoff from :data:`IMPORT_POLL_FIRST` to
  :data:`IMPORT_POLL_MAX`, bounded by ``import_timeout``), checks size, MD5 and hash against
  the master's and finishes it with the same PATCH.  A refused, failed or timed-out import is
  ImportFailed, different data ImportAltered; the copy is deleted in both cases.
* Every client-library exception (:func:`.library_errors.client_errors`: keystoneauth's,
  glanceclient's and the transport's, requests/urllib3) becomes a :class:`FacadeError` subclass
  (:mod:`.errors`) whose message names the region and the image in the original's wording
  (``{region}: Upload of {name} Failed. Cause: ...``) and never contains the password or a
  token: :class:`RegionNotFound` for a region without a public image endpoint,
  :class:`ImageNotFound` for a missing image.  Failures of the upload source arrive as
  :class:`TransferError` from the reader.  Any other exception is a bug and propagates
  unchanged (a failed upload's copy is still deleted).
* Log records of every module of the package go to the logger ``glancesync.facades.openstack``
  (under the CLI's ``glancesync`` logger).
"""

from .errors import MAX_CAUSE_LENGTH
from .facade import CONNECT_TIMEOUT, PAGE_SIZE, OpenStackFacade
from .http import IMAGE_INTERFACE, GlanceHTTP
from .imports import IMPORT_POLL_FIRST, IMPORT_POLL_MAX
from .library_errors import client_errors, glance_exc
from .retry import LOG, RETRY_DELAY, RETRY_MAX_DELAY, TRANSIENT_STATUSES, backoff, transient_cause
from .uploads import client_hashing

__all__ = ["CONNECT_TIMEOUT", "IMAGE_INTERFACE", "IMPORT_POLL_FIRST", "IMPORT_POLL_MAX", "LOG", "MAX_CAUSE_LENGTH",
           "PAGE_SIZE", "RETRY_DELAY", "RETRY_MAX_DELAY", "TRANSIENT_STATUSES", "GlanceHTTP", "OpenStackFacade",
           "backoff", "client_errors", "client_hashing", "glance_exc", "transient_cause"]
