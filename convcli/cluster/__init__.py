"""Running convcli on a Dask cluster: batches of files (:mod:`convcli.cluster.batch`) and the
connection to a scheduler (:mod:`convcli.cluster.client`).

dask and distributed are optional (``pip install 'convcli[dask]'``): importing this package does
not import them; the functions that need them do, and name the extra when they are missing.
"""

from convcli.cluster.client import LOCAL, ClusterError, connect

__all__ = ["LOCAL", "ClusterError", "connect"]
