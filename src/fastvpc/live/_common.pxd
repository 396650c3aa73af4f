# What the two I/O engines (BatchIO in _mmsg.pyx, RxRing/TxRing in _rings.pyx) share: the
# indices of the stats array, the socket limit, and the verdict -> output port rule with its
# argument checks, so both send paths apply exactly the same rules.

from libc.stdint cimport int32_t, int64_t, uint8_t

# The Action numbers come from the kernels' shared declarations (one source, checked against
# fastvpc.verdicts by tests/kernels/test_kernel_types.py).
from fastvpc._kernels.verdicts cimport ACT_DELIVER, ACT_FORWARD, ACT_REPLY

# Largest number of sockets one BatchIO / RxRing / TxRing serves (Python: MAX_SOCKETS).
cdef enum:
    _MAX_SOCKETS = 64

# Indices into the ``stats`` array (``int64``, at least STATS_LEN entries); Python: ST_*.
cdef enum:
    _ST_RX = 0              # frames received and handed on
    _ST_RX_TRUNCATED = 1    # frames longer than the slot: dropped
    _ST_RX_OUTGOING = 2     # frames the host sent itself: dropped
    _ST_RX_ERRORS = 3       # recvmmsg failures other than EAGAIN/EINTR, corrupt ring headers
    _ST_TX = 4              # frames sent
    _ST_TX_ERRORS = 5       # frames that could not be sent (queue full after retries, link down, ...)
    _ST_TX_UNATTACHED = 6   # DELIVER/FORWARD/REPLY whose egress has no attached interface
    _ST_ROUNDS = 7          # recv calls that returned at least one frame
    _STATS_LEN = 8


cdef inline int32_t _verdict_port(Py_ssize_t i, const uint8_t *action, const uint8_t *reason,
                                  const int32_t *egress, const int32_t *in_port, int64_t *counts,
                                  Py_ssize_t ncount, int nreason) noexcept nogil:
    """Tally frame ``i``'s verdict; return the port it leaves by (the egress port for DELIVER and
    FORWARD, the ingress port for REPLY), or -1 for a DROP.  Shared by both send paths."""
    cdef int64_t a = action[i]
    cdef int64_t idx = a * nreason + reason[i]
    if 0 <= idx < ncount:
        counts[idx] += 1
    if a == ACT_DELIVER or a == ACT_FORWARD:
        return egress[i]
    if a == ACT_REPLY:
        return in_port[i]
    return -1


cdef inline bint _span_ok(const int64_t *offsets, Py_ssize_t i, int64_t dlen) noexcept nogil:
    """Frame ``i`` is a non-empty span inside the buffer."""
    return 0 <= offsets[i] < offsets[i + 1] <= dlen


cdef inline int _check_send_args(Py_ssize_t n, const int64_t[::1] offsets, const int32_t[::1] in_port,
                                 const uint8_t[::1] reason, const int32_t[::1] egress, int64_t[::1] stats,
                                 int nreason) except -1:
    """The argument checks both send paths make before going nogil."""
    if offsets.shape[0] < n + 1 or in_port.shape[0] < n or reason.shape[0] < n or egress.shape[0] < n:
        raise ValueError(f"arrays are shorter than the {n} frames of action "
                         f"(offsets {offsets.shape[0]}, in_port {in_port.shape[0]}, "
                         f"reason {reason.shape[0]}, egress {egress.shape[0]})")
    if stats.shape[0] < _STATS_LEN:
        raise ValueError(f"stats needs {_STATS_LEN} entries, has {stats.shape[0]}")
    if nreason < 1:
        raise ValueError(f"nreason {nreason} must be >= 1")
    return 0
