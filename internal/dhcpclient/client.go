// Package dhcpclient keeps a DHCPv4 lease on a link: it acquires one (discover, offer,
// request, ack), puts its address and routes on the link through netlink, renews it with
// its server at T1, rebinds with any server at T2, drops it when it expires, and releases
// it when stopped. The DHCP messages go through github.com/insomniacslk/dhcp's client on a
// raw socket of the link, which works before the link has an address.
package dhcpclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/clock"
)

// DefaultLeaseDir is where the leases are kept on a running machine, so that the
// controller that keeps them takes over those the boot acquired.
const DefaultLeaseDir = "/run/plinth/dhcp"

// Defaults of a Client's settings.
const (
	// DefaultExchangeTimeout is the first wait for an answer; the library doubles it at
	// each of its DefaultTries tries of one exchange.
	DefaultExchangeTimeout = 2 * time.Second
	// DefaultTries is the number of sends of one message before the exchange fails.
	DefaultTries = 3
	// DefaultRetryMin and DefaultRetryMax bound the wait between failed acquisitions,
	// which doubles from the one to the other.
	DefaultRetryMin = 4 * time.Second
	DefaultRetryMax = 64 * time.Second
	// DefaultRenewRetry is the shortest wait between renewal (or rebinding) tries (RFC
	// 2131 4.4.5: half the time left to T2, or to the expiry, down to 60 s).
	DefaultRenewRetry = 60 * time.Second
)

// Client keeps the lease of one link.
type Client struct {
	// Link is the name of the link.
	Link string
	// Handle changes the link's addresses and routes; nil opens one in Namespace.
	Handle *netlink.Handle
	// Namespace is the network namespace of the link, for the DHCP socket; nil is the
	// caller's.
	Namespace *netns.NsHandle
	// LeaseDir keeps the lease (see Save and Load); empty keeps it in memory only.
	LeaseDir string
	// Clock times renewals and retries; clock.Real{} when nil.
	Clock clock.Clock
	// ExchangeTimeout, Tries, RetryMin, RetryMax and RenewRetry default to the Default
	// constants when zero.
	ExchangeTimeout    time.Duration
	Tries              int
	RetryMin, RetryMax time.Duration
	RenewRetry         time.Duration
	// Log receives the lease's events; slog.Default() when nil.
	Log *slog.Logger
	// OnLease, when set, is called from Run's goroutine with each lease applied (acquired,
	// renewed, rebound) and with nil when the link has none any more (expired, refused,
	// released).
	OnLease func(*Lease)
}

func (c *Client) defaults() {
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.ExchangeTimeout <= 0 {
		c.ExchangeTimeout = DefaultExchangeTimeout
	}
	if c.Tries <= 0 {
		c.Tries = DefaultTries
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.RenewRetry <= 0 {
		c.RenewRetry = DefaultRenewRetry
	}
}

// handle returns the netlink handle and a function that closes it when Client opened it.
func (c *Client) handle() (*netlink.Handle, func(), error) {
	if c.Handle != nil {
		return c.Handle, func() {}, nil
	}
	var h *netlink.Handle
	var err error
	if c.Namespace != nil {
		h, err = netlink.NewHandleAt(*c.Namespace, unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE) // only routes: the OS kernel has no XFRM, for one
	}
	if err != nil {
		return nil, nil, fmt.Errorf("netlink: %w", err)
	}
	return h, h.Close, nil
}

// Acquire gets a new lease (discover, offer, request, ack), applies it and saves it.
// It tries once: Run retries.
func (c *Client) Acquire(ctx context.Context) (*Lease, error) {
	c.defaults()
	h, done, err := c.handle()
	if err != nil {
		return nil, err
	}
	defer done()
	return c.acquire(ctx, h, nil)
}

func (c *Client) acquire(ctx context.Context, h *netlink.Handle, prev *Lease) (*Lease, error) {
	if err := linkUp(h, c.Link); err != nil {
		return nil, err
	}
	var lease *Lease
	err := c.exchange(false, func(dc *nclient4.Client) error {
		nl, err := dc.Request(ctx, requestedOptions)
		if err != nil {
			return err
		}
		lease, err = newLease(c.Link, nl.Offer, nl.ACK, c.Clock.Now())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("DHCP on %s: %w", c.Link, err)
	}
	if err := c.bind(h, lease, prev); err != nil {
		return nil, err
	}
	c.Log.Info("DHCP lease acquired", "link", c.Link, "address", lease.Address, "server", lease.Server, "lease", lease.Duration)
	return lease, nil
}

// requestedOptions asks for what the lease applies, beyond the library's defaults (subnet
// mask, router, domain name, name servers).
var requestedOptions = dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainName,
	dhcpv4.OptionDomainNameServer, dhcpv4.OptionDNSDomainSearchList, dhcpv4.OptionClasslessStaticRoute,
	dhcpv4.OptionIPAddressLeaseTime, dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue)

// bind applies the lease and saves it.
func (c *Client) bind(h *netlink.Handle, lease, prev *Lease) error {
	if err := apply(h, lease, prev, c.Clock.Now()); err != nil {
		return err
	}
	if c.LeaseDir != "" {
		if err := lease.Save(c.LeaseDir); err != nil {
			return err
		}
	}
	return nil
}

// exchange runs fn with a DHCP client of the link, whose socket is made in the link's
// namespace: a raw socket while the link has no address (bound is false: discovery), a
// UDP socket bound to the link otherwise (renewal, rebinding and release, which the
// kernel sends from the leased address, as servers and the kernels on the way expect).
func (c *Client) exchange(bound bool, fn func(*nclient4.Client) error) error {
	var conn net.PacketConn
	var hw net.HardwareAddr
	err := inNamespace(c.Namespace, func() error {
		ifc, err := net.InterfaceByName(c.Link)
		if err != nil {
			return err
		}
		hw = ifc.HardwareAddr
		if bound {
			conn, err = server4.NewIPv4UDPConn(c.Link, &net.UDPAddr{Port: nclient4.ClientPort})
		} else {
			conn, err = nclient4.NewRawUDPConn(c.Link, nclient4.ClientPort)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("open a DHCP socket on %s: %w", c.Link, err)
	}
	dc, err := nclient4.NewWithConn(conn, hw, nclient4.WithTimeout(c.ExchangeTimeout), nclient4.WithRetry(c.Tries))
	if err != nil {
		conn.Close()
		return err
	}
	defer dc.Close()
	return fn(dc)
}

// inNamespace runs fn on a thread in ns (nil: the caller's namespace).
func inNamespace(ns *netns.NsHandle, fn func() error) error {
	if ns == nil {
		return fn()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(*ns); err != nil {
		return fmt.Errorf("enter the network namespace: %w", err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread is left in the wrong namespace: keep it locked so that it dies.
		runtime.LockOSThread()
		return errors.Join(ferr, fmt.Errorf("leave the network namespace: %w", err))
	}
	return ferr
}

func linkUp(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("bring %s up: %w", name, err)
		}
	}
	return nil
}

// extend sends a request for the lease's address (RENEWING: to its server; REBINDING: to
// every server) and returns the new lease. A NAK is returned as *nclient4.ErrNak.
func (c *Client) extend(ctx context.Context, lease *Lease, rebind bool) (*Lease, error) {
	xid, err := dhcpv4.GenerateTransactionID()
	if err != nil {
		return nil, err
	}
	req, err := dhcpv4.NewRenewFromAck(lease.ack, dhcpv4.WithTransactionID(xid), requestedOptions,
		dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(nclient4.MaxMessageSize)))
	if err != nil {
		return nil, fmt.Errorf("build the request: %w", err)
	}
	dest := &net.UDPAddr{IP: net.IPv4bcast, Port: nclient4.ServerPort}
	if !rebind && lease.Server.IsValid() {
		dest.IP = lease.Server.AsSlice()
	}
	var next *Lease
	err = c.exchange(true, func(dc *nclient4.Client) error {
		resp, err := dc.SendAndRead(ctx, dest, req, nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak))
		if err != nil {
			return err
		}
		if resp.MessageType() == dhcpv4.MessageTypeNak {
			return &nclient4.ErrNak{Offer: lease.offer, Nak: resp}
		}
		next, err = newLease(c.Link, lease.offer, resp, c.Clock.Now())
		return err
	})
	return next, err
}

// release tells the lease's server that the address is free again.
func (c *Client) release(lease *Lease) error {
	return c.exchange(true, func(dc *nclient4.Client) error {
		return dc.Release(&nclient4.Lease{Offer: lease.offer, ACK: lease.ack})
	})
}

// Run keeps a lease on the link until ctx ends, then releases it, removes its address
// and routes, and returns nil. It starts from the lease saved in LeaseDir when there is
// one that has not expired (the boot's), else acquires one, retrying with backoff.
func (c *Client) Run(ctx context.Context) error {
	c.defaults()
	h, done, err := c.handle()
	if err != nil {
		return err
	}
	defer done()
	var lease *Lease
	if c.LeaseDir != "" {
		saved, err := Load(c.LeaseDir, c.Link)
		switch {
		case err != nil:
			c.Log.Warn("the saved DHCP lease is unusable; acquiring a new one", "link", c.Link, "error", err)
		case saved != nil && c.Clock.Now().Before(saved.Expires()):
			if err := c.bind(h, saved, nil); err != nil {
				c.Log.Warn("the saved DHCP lease could not be applied; acquiring a new one", "link", c.Link, "error", err)
			} else {
				lease = saved
				c.notify(lease)
			}
		}
	}
	retry := c.RetryMin
	for {
		if lease == nil {
			l, err := c.acquire(ctx, h, nil)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				c.Log.Warn("no DHCP lease", "link", c.Link, "error", err, "retry", retry)
				if !c.sleep(ctx, retry) {
					return nil
				}
				retry = min(retry*2, c.RetryMax)
				continue
			}
			lease, retry = l, c.RetryMin
			c.notify(lease)
		}
		next, ok := c.keep(ctx, h, lease)
		if !ok {
			c.stop(h, lease)
			return nil
		}
		if next == nil {
			c.notify(nil)
		}
		lease = next
	}
}

// keep waits for T1, then renews the lease until T2, then rebinds it until it expires.
// It returns the next lease (nil when it expired or was refused: acquire again) and
// false when ctx ended.
func (c *Client) keep(ctx context.Context, h *netlink.Handle, lease *Lease) (*Lease, bool) {
	if !c.sleepUntil(ctx, lease.Acquired.Add(lease.T1)) {
		return lease, false
	}
	for {
		now := c.Clock.Now()
		if !now.Before(lease.Expires()) {
			c.Log.Warn("DHCP lease expired", "link", c.Link, "address", lease.Address)
			if err := unapply(h, lease); err != nil {
				c.Log.Error("remove the expired lease", "link", c.Link, "error", err)
			}
			c.forget()
			return nil, true
		}
		// A renewal is cut at T2, a rebinding at the expiry, so that the next step starts on
		// time even while the library still waits for an answer.
		until := lease.Acquired.Add(lease.T2)
		rebind := !now.Before(until)
		if rebind {
			until = lease.Expires()
		}
		tryCtx, cancel := context.WithTimeout(ctx, until.Sub(now))
		next, err := c.extend(tryCtx, lease, rebind)
		cancel()
		if ctx.Err() != nil {
			return lease, false
		}
		var nak *nclient4.ErrNak
		switch {
		case errors.As(err, &nak):
			c.Log.Warn("the DHCP server refused the lease", "link", c.Link, "address", lease.Address, "error", err)
			if err := unapply(h, lease); err != nil {
				c.Log.Error("remove the refused lease", "link", c.Link, "error", err)
			}
			c.forget()
			return nil, true
		case err == nil:
			if err := c.bind(h, next, lease); err != nil {
				c.Log.Error("apply the renewed lease", "link", c.Link, "error", err)
			}
			what := "renewed"
			if rebind {
				what = "rebound"
			}
			c.Log.Info("DHCP lease "+what, "link", c.Link, "address", next.Address, "server", next.Server, "lease", next.Duration)
			c.notify(next)
			return next, true
		}
		// No answer: half the time left to T2 (or to the expiry), at least RenewRetry,
		// and never past T2 (or the expiry).
		left := until.Sub(c.Clock.Now())
		if left <= 0 {
			continue
		}
		wait := min(max(left/2, c.RenewRetry), left)
		c.Log.Warn("DHCP lease not extended", "link", c.Link, "rebinding", rebind, "error", err, "retry", wait)
		if !c.sleep(ctx, wait) {
			return lease, false
		}
	}
}

// stop releases the lease and removes it from the link, as Run ends.
func (c *Client) stop(h *netlink.Handle, lease *Lease) {
	if err := c.release(lease); err != nil {
		c.Log.Warn("DHCP release", "link", c.Link, "error", err)
	}
	if err := unapply(h, lease); err != nil {
		c.Log.Error("remove the released lease", "link", c.Link, "error", err)
	}
	c.forget()
	c.Log.Info("DHCP lease released", "link", c.Link, "address", lease.Address)
	c.notify(nil)
}

func (c *Client) forget() {
	if c.LeaseDir != "" {
		if err := Forget(c.LeaseDir, c.Link); err != nil {
			c.Log.Error("forget the lease", "error", err)
		}
	}
}

func (c *Client) notify(l *Lease) {
	if c.OnLease != nil {
		c.OnLease(l)
	}
}

// sleep waits d, or less when ctx ends first; it reports whether ctx is still live.
func (c *Client) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := c.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

func (c *Client) sleepUntil(ctx context.Context, at time.Time) bool {
	return c.sleep(ctx, at.Sub(c.Clock.Now()))
}

// AcquireAll acquires a lease on each link at once, as the boot does before anything
// needs the network: each link is tried until it has a lease or ctx ends. Each lease is
// applied and saved in dir, for the Run that keeps it. It returns the leases in links'
// order (nil for the links without one) and the errors of those links joined.
func AcquireAll(ctx context.Context, links []string, dir string, log *slog.Logger) ([]*Lease, error) {
	leases := make([]*Lease, len(links))
	errs := make([]error, len(links))
	done := make(chan struct{})
	for i, link := range links {
		go func() {
			defer func() { done <- struct{}{} }()
			c := &Client{Link: link, LeaseDir: dir, Log: log}
			c.defaults()
			retry := c.RetryMin
			for {
				l, err := c.Acquire(ctx)
				if err == nil {
					leases[i] = l
					return
				}
				if !c.sleep(ctx, retry) {
					errs[i] = err
					return
				}
				retry = min(retry*2, c.RetryMax)
			}
		}()
	}
	for range links {
		<-done
	}
	return leases, errors.Join(errs...)
}

// BootTimeout bounds how long the boot waits for the leases of AcquireAll.
const BootTimeout = time.Minute
