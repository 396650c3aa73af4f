# Linux declarations for the live switch's compiled I/O (_mmsg.pyx, _rings.pyx): errno, iovec,
# msghdr/mmsghdr with recvmmsg/sendmmsg, sockaddr_ll, poll, mmap, and small C accessors for the
# TPACKET ring headers.  The accessors are C (not Cython) because the kernel's ring structs are
# nested unions and the ring words need acquire/release ordering; they are static inline, so
# each module gets only what it uses.

from libc.stdint cimport uint8_t, uint32_t

cdef extern from "<errno.h>" nogil:
    int errno
    int EAGAIN
    int EWOULDBLOCK
    int EINTR
    int ENOBUFS
    int EMSGSIZE


cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void *iov_base
        size_t iov_len


cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    int MSG_DONTWAIT
    int MSG_TRUNC
    int recvmmsg(int sockfd, mmsghdr *msgvec, unsigned int vlen, int flags, void *timeout)
    int sendmmsg(int sockfd, mmsghdr *msgvec, unsigned int vlen, int flags)


cdef extern from "<linux/if_packet.h>" nogil:
    struct sockaddr_ll:
        unsigned short sll_family
        unsigned short sll_protocol
        int sll_ifindex
        unsigned short sll_hatype
        unsigned char sll_pkttype
        unsigned char sll_halen
        unsigned char sll_addr[8]
    int PACKET_OUTGOING


cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    ctypedef unsigned long nfds_t
    int poll(pollfd *fds, nfds_t nfds, int timeout)
    short POLLIN
    short POLLOUT
    short POLLERR


cdef extern from "<sys/mman.h>" nogil:
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)
    int munmap(void *addr, size_t length)
    int PROT_READ
    int PROT_WRITE
    int MAP_SHARED
    void *MAP_FAILED


cdef extern from *:
    """
    #include <linux/if_packet.h>
    #include <sys/socket.h>
    #include <stdint.h>
    #include <string.h>
    #include <errno.h>
    /* Ring words shared with the kernel: acquire loads, release stores. */
    static inline uint32_t fv_load_acquire_u32(const volatile uint32_t *p) {
        return __atomic_load_n(p, __ATOMIC_ACQUIRE);
    }
    static inline void fv_store_release_u32(volatile uint32_t *p, uint32_t v) {
        __atomic_store_n(p, v, __ATOMIC_RELEASE);
    }
    /* TPACKET_V3 receive ring on fd: returns 0 or an errno value. */
    static inline int fv_setup_rx_ring(int fd, unsigned block_size, unsigned block_nr, unsigned frame_size,
                                unsigned retire_ms) {
        int v = TPACKET_V3;
        struct tpacket_req3 req;
        if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) != 0) return errno;
        memset(&req, 0, sizeof(req));
        req.tp_block_size = block_size;
        req.tp_block_nr = block_nr;
        req.tp_frame_size = frame_size;
        req.tp_frame_nr = (block_size / frame_size) * block_nr;
        req.tp_retire_blk_tov = retire_ms;
        req.tp_sizeof_priv = 0;
        req.tp_feature_req_word = 0;
        if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) != 0) return errno;
        return 0;
    }
    /* TPACKET_V2 transmit ring on fd (frames of frame_size in blocks of block_size); 0 or errno.
       PACKET_LOSS: a malformed frame is skipped by the kernel instead of stalling the ring. */
    static inline int fv_setup_tx_ring(int fd, unsigned block_size, unsigned block_nr, unsigned frame_size,
                                int vnet) {
        int v = TPACKET_V2, one = 1;
        struct tpacket_req req;
        if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) != 0) return errno;
        if (setsockopt(fd, SOL_PACKET, PACKET_LOSS, &one, sizeof(one)) != 0) return errno;
        if (vnet && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) != 0) return errno;
        memset(&req, 0, sizeof(req));
        req.tp_block_size = block_size;
        req.tp_block_nr = block_nr;
        req.tp_frame_size = frame_size;
        req.tp_frame_nr = (block_size / frame_size) * block_nr;
        if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) != 0) return errno;
        return 0;
    }
    static inline volatile uint32_t *fv_tx_status(uint8_t *f) {
        return (volatile uint32_t *)&((struct tpacket2_hdr *)f)->tp_status;
    }
    static inline void fv_tx_set_len(uint8_t *f, uint32_t len) {
        ((struct tpacket2_hdr *)f)->tp_len = len;
        ((struct tpacket2_hdr *)f)->tp_snaplen = len;
    }
    #define FV_TX_DATA_OFF (TPACKET_ALIGN(sizeof(struct tpacket2_hdr)))
    /* A virtio_net_hdr (10 bytes, little endian) asking for no offload, whose hdr_len makes the
       kernel copy the first hdr_len bytes of the frame into the skb's linear part. */
    static inline void fv_tx_vnet_hdr(uint8_t *p, uint32_t linear) {
        memset(p, 0, 10);
        p[2] = (uint8_t)(linear & 0xff);
        p[3] = (uint8_t)(linear >> 8);
    }
    /* Block header fields (struct tpacket_block_desc, version 1). */
    static inline volatile uint32_t *fv_blk_status(uint8_t *blk) {
        return &((struct tpacket_block_desc *)blk)->hdr.bh1.block_status;
    }
    static inline uint32_t fv_blk_num_pkts(const uint8_t *blk) {
        return ((const struct tpacket_block_desc *)blk)->hdr.bh1.num_pkts;
    }
    static inline uint32_t fv_blk_first(const uint8_t *blk) {
        return ((const struct tpacket_block_desc *)blk)->hdr.bh1.offset_to_first_pkt;
    }
    /* Frame header fields (struct tpacket3_hdr, then struct sockaddr_ll). */
    static inline uint32_t fv_pkt_next(const uint8_t *h) { return ((const struct tpacket3_hdr *)h)->tp_next_offset; }
    static inline uint32_t fv_pkt_snaplen(const uint8_t *h) { return ((const struct tpacket3_hdr *)h)->tp_snaplen; }
    static inline uint32_t fv_pkt_len(const uint8_t *h) { return ((const struct tpacket3_hdr *)h)->tp_len; }
    static inline uint32_t fv_pkt_mac(const uint8_t *h) { return ((const struct tpacket3_hdr *)h)->tp_mac; }
    static inline uint32_t fv_pkt_status(const uint8_t *h) { return ((const struct tpacket3_hdr *)h)->tp_status; }
    /* recvmmsg with PACKET_AUXDATA: the control buffer each message needs, and the tp_status the
       kernel put in it (0 when the message carries none). */
    #define FV_AUX_SPACE (CMSG_SPACE(sizeof(struct tpacket_auxdata)))
    static inline const struct tpacket_auxdata *fv_aux(struct msghdr *m) {   /* NULL: none */
        struct cmsghdr *c;
        for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
            if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA &&
                c->cmsg_len >= CMSG_LEN(sizeof(struct tpacket_auxdata)))
                return (const struct tpacket_auxdata *)CMSG_DATA(c);
        }
        return NULL;
    }
    static inline uint32_t fv_aux_status(struct msghdr *m) {
        const struct tpacket_auxdata *a = fv_aux(m);
        return a != NULL ? a->tp_status : 0;
    }
    /* The 802.1Q/802.1ad tag the kernel stripped from a frame (rx-vlan-offload, a veth's default) and
       kept in the metadata: (TPID << 16) | TCI, or 0 when the frame arrived untagged. */
    static inline uint32_t fv_vlan_word(uint32_t status, uint16_t tci, uint16_t tpid) {
        if (!(status & TP_STATUS_VLAN_VALID))
            return 0;
        return ((uint32_t)((status & TP_STATUS_VLAN_TPID_VALID) && tpid ? tpid : 0x8100) << 16) | tci;
    }
    static inline uint32_t fv_pkt_vlan(const uint8_t *h) {
        const struct tpacket3_hdr *t = (const struct tpacket3_hdr *)h;
        return fv_vlan_word(t->tp_status, t->hv1.tp_vlan_tci, t->hv1.tp_vlan_tpid);
    }
    static inline uint32_t fv_aux_vlan(struct msghdr *m) {
        const struct tpacket_auxdata *a = fv_aux(m);
        return a != NULL ? fv_vlan_word(a->tp_status, a->tp_vlan_tci, a->tp_vlan_tpid) : 0;
    }
    static inline unsigned char fv_pkt_type(const uint8_t *h) {
        return ((const struct sockaddr_ll *)(h + TPACKET_ALIGN(sizeof(struct tpacket3_hdr))))->sll_pkttype;
    }
    """
    uint32_t fv_load_acquire_u32(const uint32_t *p) nogil
    void fv_store_release_u32(uint32_t *p, uint32_t v) nogil
    int fv_setup_rx_ring(int fd, unsigned block_size, unsigned block_nr, unsigned frame_size,
                         unsigned retire_ms) nogil
    uint32_t *fv_blk_status(uint8_t *blk) nogil
    uint32_t fv_blk_num_pkts(const uint8_t *blk) nogil
    uint32_t fv_blk_first(const uint8_t *blk) nogil
    uint32_t fv_pkt_next(const uint8_t *h) nogil
    uint32_t fv_pkt_snaplen(const uint8_t *h) nogil
    uint32_t fv_pkt_len(const uint8_t *h) nogil
    uint32_t fv_pkt_mac(const uint8_t *h) nogil
    unsigned char fv_pkt_type(const uint8_t *h) nogil
    uint32_t fv_pkt_status(const uint8_t *h) nogil
    int FV_AUX_SPACE
    uint32_t fv_aux_status(msghdr *m) nogil
    uint32_t fv_pkt_vlan(const uint8_t *h) nogil
    uint32_t fv_aux_vlan(msghdr *m) nogil
    uint32_t TP_STATUS_CSUMNOTREADY
    uint32_t TP_STATUS_USER
    uint32_t TP_STATUS_KERNEL
    int fv_setup_tx_ring(int fd, unsigned block_size, unsigned block_nr, unsigned frame_size, int vnet) nogil
    void fv_tx_vnet_hdr(uint8_t *p, uint32_t linear) nogil
    uint32_t *fv_tx_status(uint8_t *f) nogil
    void fv_tx_set_len(uint8_t *f, uint32_t len) nogil
    int FV_TX_DATA_OFF
    uint32_t TP_STATUS_AVAILABLE
    uint32_t TP_STATUS_SEND_REQUEST
    ssize_t c_send "send"(int fd, const void *buf, size_t n, int flags) nogil
