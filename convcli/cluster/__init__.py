"""Running convcli on a Dask cluster: batches of files (:mod:`convcli.cluster.batch`), images in
tiles (:mod:`convcli.cluster.tiles`) and the connection to a scheduler (:mod:`convcli.cluster.client`).

dask, distributed and zarr are optional (``pip install 'convcli[dask]'``): importing this package
does not import them; the functions that need them do, and name the extra when they are missing.
"""

from convcli.cluster.client import LOCAL, ClusterError, connect

__all__ = ["LOCAL", "ClusterError", "connect"]
