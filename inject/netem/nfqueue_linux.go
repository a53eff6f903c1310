package netem

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// delayer delays packets in user space, for kernels without the netem
// qdisc: an iptables rule hands every packet leaving one side of a pair
// to an NFQUEUE, and the delayer gives each its verdict (accept) once its
// delay is over. Packets wait in the kernel meanwhile; only their ids
// cross to user space.
type delayer struct {
	fd     int
	queue  uint16
	delay  time.Duration
	jitter time.Duration
	rng    *rand.Rand

	mu      sync.Mutex
	pending idHeap
	wake    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	closed  bool
}

// nfnetlink_queue's protocol (linux/netfilter/nfnetlink_queue.h).
const (
	nfnlSubsysQueue = 3
	nfqnlMsgPacket  = 0
	nfqnlMsgVerdict = 1
	nfqnlMsgConfig  = 2

	nfqaCfgCmd      = 1
	nfqaCfgParams   = 2
	nfqaCfgQueueMax = 3
	nfqaCfgMask     = 4
	nfqaCfgFlags    = 5
	nfqaPacketHdr   = 1
	nfqaVerdictHdr  = 2

	nfqnlCfgCmdBind   = 1
	nfqnlCfgCmdUnbind = 2
	nfqnlCopyMeta     = 1
	nfqaCfgFFailOpen  = 1 << 0
	nfqaCfgFGSO       = 1 << 2

	nfAccept = 1

	// queueMax is how many packets may wait at once: 100 ms of a busy
	// link's packets.
	queueMax = 1 << 16
)

// startDelayer binds queue in the calling thread's namespace (the caller
// runs it inside Pair.in) and starts giving verdicts.
func startDelayer(queue uint16, delay, jitter time.Duration, seed uint64) (*delayer, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("nfqueue socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nfqueue bind: %w", err)
	}
	// Room for tens of thousands of notices; a packet whose notice finds
	// no room, or the queue full, goes on undelayed (fail open) rather
	// than being lost.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<20)
	}
	// Reads wake up now and then to see whether the delayer was closed:
	// closing a netlink socket does not end a read in progress.
	tv := unix.NsecToTimeval(int64(20 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nfqueue socket: %w", err)
	}
	d := &delayer{fd: fd, queue: queue, delay: delay, jitter: jitter, rng: rand.New(rand.NewPCG(seed, uint64(queue))),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	cmd := []byte{nfqnlCfgCmdBind, 0, 0, unix.AF_INET}
	params := make([]byte, 5)
	binary.BigEndian.PutUint32(params, 0) // copy no payload: the id is enough
	params[4] = nfqnlCopyMeta
	maxlen := binary.BigEndian.AppendUint32(nil, queueMax)
	// Whole GSO packets, not their segments: the delayer never reads a
	// payload, and a bulk transfer then queues a tenth of the packets.
	flags := binary.BigEndian.AppendUint32(nil, nfqaCfgFGSO|nfqaCfgFFailOpen)
	cfg := append(attr(nfqaCfgParams, params), attr(nfqaCfgQueueMax, maxlen)...)
	cfg = append(cfg, attr(nfqaCfgMask, flags)...)
	cfg = append(cfg, attr(nfqaCfgFlags, flags)...)
	for _, a := range [][]byte{attr(nfqaCfgCmd, cmd), cfg} {
		if err := d.config(a); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("nfqueue %d config: %w", queue, err)
		}
	}
	d.wg.Go(d.read)
	d.wg.Go(d.release)
	return d, nil
}

// attr is one netlink attribute, padded to four bytes.
func attr(typ uint16, data []byte) []byte {
	b := make([]byte, 4, 4+len(data)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// config sends a configuration message and waits for the kernel's
// answer: a queue another process holds is refused here.
func (d *delayer) config(attrs []byte) error {
	if err := d.sendFlags(nfqnlMsgConfig, unix.NLM_F_REQUEST|unix.NLM_F_ACK, attrs); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(d.fd, buf, 0)
	if err != nil {
		return err
	}
	if n < unix.SizeofNlMsghdr+4 || binary.NativeEndian.Uint16(buf[4:]) != unix.NLMSG_ERROR {
		return fmt.Errorf("unexpected answer of %d bytes", n)
	}
	if code := int32(binary.NativeEndian.Uint32(buf[unix.SizeofNlMsghdr:])); code != 0 {
		return unix.Errno(-code)
	}
	return nil
}

// send sends one nfnetlink_queue message with the given attributes.
func (d *delayer) send(msg uint16, attrs []byte) error {
	return d.sendFlags(msg, unix.NLM_F_REQUEST, attrs)
}

func (d *delayer) sendFlags(msg, flags uint16, attrs []byte) error {
	b := make([]byte, unix.SizeofNlMsghdr+4, unix.SizeofNlMsghdr+4+len(attrs))
	binary.NativeEndian.PutUint32(b, uint32(len(b)+len(attrs)))
	binary.NativeEndian.PutUint16(b[4:], nfnlSubsysQueue<<8|msg)
	binary.NativeEndian.PutUint16(b[6:], flags)
	b[unix.SizeofNlMsghdr] = unix.AF_UNSPEC // nfgenmsg: family, version 0, queue
	binary.BigEndian.PutUint16(b[unix.SizeofNlMsghdr+2:], d.queue)
	b = append(b, attrs...)
	return unix.Sendto(d.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// read takes the queue's packets and schedules each one's verdict.
func (d *delayer) read() {
	buf := make([]byte, 1<<16)
	for {
		select {
		case <-d.done:
			return
		default:
		}
		n, _, err := unix.Recvfrom(d.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			// Nobody would give verdicts: unbound, the queue lets
			// packets by (--queue-bypass) instead of holding them.
			_ = d.send(nfqnlMsgConfig, attr(nfqaCfgCmd, []byte{nfqnlCfgCmdUnbind, 0, 0, unix.AF_INET}))
			return
		}
		d.handle(buf[:n], time.Now())
	}
}

// handle schedules the packets of the notices in b.
func (d *delayer) handle(b []byte, now time.Time) {
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(binary.NativeEndian.Uint32(b))
		if l < unix.SizeofNlMsghdr || l > len(b) {
			return
		}
		typ := binary.NativeEndian.Uint16(b[4:])
		if typ == nfnlSubsysQueue<<8|nfqnlMsgPacket && l >= unix.SizeofNlMsghdr+4 {
			if id, ok := packetID(b[unix.SizeofNlMsghdr+4 : l]); ok {
				d.schedule(id, now)
			}
		}
		b = b[min((l+3)&^3, len(b)):]
	}
}

// packetID finds the packet id among a packet message's attributes.
func packetID(attrs []byte) (uint32, bool) {
	for len(attrs) >= 4 {
		l := int(binary.NativeEndian.Uint16(attrs))
		typ := binary.NativeEndian.Uint16(attrs[2:]) & 0x3fff
		if l < 4 || l > len(attrs) {
			return 0, false
		}
		if typ == nfqaPacketHdr && l >= 8 {
			return binary.BigEndian.Uint32(attrs[4:]), true
		}
		attrs = attrs[min((l+3)&^3, len(attrs)):]
	}
	return 0, false
}

// schedule sets a packet's verdict for its arrival plus its delay, drawn
// uniformly within ± jitter as netem does.
func (d *delayer) schedule(id uint32, arrived time.Time) {
	wait := d.delay
	if d.jitter > 0 {
		wait += time.Duration(d.rng.Int64N(int64(2*d.jitter)+1)) - d.jitter
	}
	d.mu.Lock()
	heap.Push(&d.pending, held{id: id, at: arrived.Add(max(wait, 0))})
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// release gives each held packet its verdict when its time comes.
func (d *delayer) release() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		d.mu.Lock()
		var due []uint32
		now := time.Now()
		for d.pending.Len() > 0 && !d.pending[0].at.After(now) {
			due = append(due, heap.Pop(&d.pending).(held).id)
		}
		next := time.Hour
		if d.pending.Len() > 0 {
			next = d.pending[0].at.Sub(now)
		}
		d.mu.Unlock()
		for _, id := range due {
			d.accept(id)
		}
		t.Reset(next)
		select {
		case <-d.done:
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}

// close lets the packets still held go at once, unbinds the queue and
// stops. The rule feeding the queue is removed first, so no packet
// arrives after.
func (d *delayer) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	d.mu.Unlock()
	close(d.done)
	d.wg.Wait()
	// Notices still unread are packets too: the queue drops what is left
	// when it is unbound.
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(d.fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			break
		}
		d.handle(buf[:n], time.Now())
	}
	for d.pending.Len() > 0 {
		d.accept(heap.Pop(&d.pending).(held).id)
	}
	_ = d.send(nfqnlMsgConfig, attr(nfqaCfgCmd, []byte{nfqnlCfgCmdUnbind, 0, 0, unix.AF_INET}))
	unix.Close(d.fd)
}

// accept gives packet id its verdict: on its way. A verdict the kernel
// had no room for is sent again; a packet without one would be held until
// the queue is unbound.
func (d *delayer) accept(id uint32) {
	v := make([]byte, 8)
	binary.BigEndian.PutUint32(v, nfAccept)
	binary.BigEndian.PutUint32(v[4:], id)
	for range 10 {
		err := d.send(nfqnlMsgVerdict, attr(nfqaVerdictHdr, v))
		if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// held is a packet waiting for its verdict.
type held struct {
	id uint32
	at time.Time
}

// idHeap orders held packets by their release time.
type idHeap []held

func (h idHeap) Len() int           { return len(h) }
func (h idHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h idHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idHeap) Push(x any)        { *h = append(*h, x.(held)) }
func (h *idHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
