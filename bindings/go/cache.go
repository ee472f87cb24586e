// SPDX-License-Identifier: LGPL-2.1-or-later

package kprim

import (
	"errors"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The errors of a memcached client (gomemcache's values' shapes).
var (
	// ErrCacheMiss: the key is not there (or has expired).
	ErrCacheMiss = errors.New("kprim: cache miss")
	// ErrCASConflict: CompareAndSwap lost to another store of the key.
	ErrCASConflict = errors.New("kprim: compare-and-swap conflict")
	// ErrNotStored: Add of a present key, Replace or CompareAndSwap of an
	// absent one.
	ErrNotStored = errors.New("kprim: item not stored")
	// ErrMalformedKey: a key of 0 or more than 250 bytes.
	ErrMalformedKey = errors.New("kprim: key is empty or longer than 250 bytes")
	// ErrFlags: Item.Flags is not 0; kprim stores no flags beside the value.
	ErrFlags = errors.New("kprim: item flags are not stored")
)

// An Item is a key and its value, as in gomemcache.
type Item struct {
	Key   string
	Value []byte
	// Flags must be 0: kprim keeps the value only (ErrFlags otherwise).
	Flags uint32
	// Expiration as memcached has it: seconds from now, or a Unix time
	// when above 30 days; 0 is the cache's default TTL (no expiry unless
	// the cache was created with one); negative: expired at once.
	Expiration int32
	// CasID is the entry's version, filled in by Get and by stores;
	// CompareAndSwap stores only if the entry is still at it.
	CasID uint64
}

// CacheConfig holds the limits of a new cache; zero fields take the
// kernel's defaults (64 MiB, 65536 entries, 1 MiB values, no default TTL).
type CacheConfig struct {
	MaxBytes, MaxEntries, MaxValue uint64
	DefaultTTL                     time.Duration
}

// A Cache is an expiring key-value cache in the kernel, shared by every
// process that opens its name, used the way a memcached client is
// (gomemcache's *memcache.Client methods). Values are bytes, keys 1..250
// bytes (any bytes). Methods are safe for concurrent use.
type Cache struct {
	object
	mget bool
}

// OpenCache creates or opens the cache name ("" for an anonymous one) with
// the C library's flags and, for a new one, permission bits mode and cfg
// (nil: defaults).
func OpenCache(name string, flags Flag, mode uint32, cfg *CacheConfig) (*Cache, error) {
	var a kOpen
	if cfg != nil {
		if cfg.DefaultTTL < 0 {
			return nil, unix.EINVAL
		}
		a.Params[0], a.Params[1], a.Params[2] = cfg.MaxBytes, cfg.MaxEntries, cfg.MaxValue
		a.Params[3] = uint64(cfg.DefaultTTL)
	}
	fd, err := openObject(kindCache, name, flags, mode, &a)
	if err != nil {
		return nil, err
	}
	s, _ := getSession()
	return &Cache{object: newObject(fd), mget: s.features&featCacheMget != 0}, nil
}

// Close closes the handle; the cache lives on while named or open elsewhere.
func (c *Cache) Close() error { return c.close() }

func checkKey(key string) error {
	if len(key) == 0 || len(key) > keyMax {
		return ErrMalformedKey
	}
	return nil
}

// Values up to this size are read in one call; larger ones take a second
// with a buffer of the size the kernel reported.
const getBuf = 4096

var bufPool = sync.Pool{New: func() interface{} { b := make([]byte, getBuf); return &b }}

// get reads key's value into a new slice of its exact length.
func (c *Cache) get(key string) (*Item, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		g := kCacheGet{Size: uint32(unsafe.Sizeof(kCacheGet{})), Key: strPtr(key),
			KeyLen: uint32(len(key)), Value: bytesPtr(buf), ValueLen: uint64(len(buf))}
		err := c.with(func(fd int) error {
			_, err := ioctl(fd, iocCacheGet, unsafe.Pointer(&g))
			return err
		})
		switch err {
		case nil:
			v := make([]byte, g.ValueLen)
			copy(v, buf)
			return &Item{Key: key, Value: v, CasID: g.CAS}, nil
		case unix.EMSGSIZE:
			// Grown since, or larger than the pool's buffers: the
			// kernel said how large it is now.
			buf = make([]byte, g.ValueLen)
			continue
		case unix.ENOENT:
			return nil, ErrCacheMiss
		}
		return nil, err
	}
}

// Get returns the item of key, or ErrCacheMiss.
func (c *Cache) Get(key string) (*Item, error) { return c.get(key) }

// GetMulti looks up many keys (one kernel call per 1024 keys where the
// module has KPRIM_IOC_CACHE_MGET); the map holds the keys found. Each key
// is looked up at its own instant: the result is not a snapshot.
func (c *Cache) GetMulti(keys []string) (map[string]*Item, error) {
	m := make(map[string]*Item, len(keys))
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, err
		}
	}
	if !c.mget {
		for _, k := range keys {
			it, err := c.get(k)
			if err == ErrCacheMiss {
				continue
			}
			if err != nil {
				return nil, err
			}
			m[k] = it
		}
		return m, nil
	}
	// Each key gets a slot of a shared buffer; values that do not fit
	// are fetched alone.
	const slot = 256
	for done := 0; done < len(keys); {
		n := len(keys) - done
		if n > cacheMgetMax {
			n = cacheMgetMax
		}
		batch := keys[done : done+n]
		ents := make([]kMgetEntry, n)
		buf := make([]byte, n*slot)
		for i, k := range batch {
			ents[i] = kMgetEntry{Key: strPtr(k), KeyLen: uint32(len(k)),
				Value: bytesPtr(buf[i*slot : (i+1)*slot]), ValueLen: slot}
		}
		mg := kCacheMget{Size: uint32(unsafe.Sizeof(kCacheMget{})), Entries: mkptr(unsafe.Pointer(&ents[0])),
			Count: uint32(n), EntrySize: uint32(unsafe.Sizeof(kMgetEntry{}))}
		err := c.with(func(fd int) error {
			_, err := ioctl(fd, iocCacheMget, unsafe.Pointer(&mg))
			return err
		})
		if err != nil {
			return nil, err
		}
		for i, k := range batch {
			switch r := ents[i].Result; r {
			case 0:
				v := make([]byte, ents[i].ValueLen)
				copy(v, buf[i*slot:])
				m[k] = &Item{Key: k, Value: v, CasID: ents[i].CAS}
			case -int32(unix.EMSGSIZE):
				it, err := c.get(k)
				if err == ErrCacheMiss {
					continue
				}
				if err != nil {
					return nil, err
				}
				m[k] = it
			case -int32(unix.ENOENT):
			default:
				return nil, unix.Errno(-r)
			}
		}
		done += n
	}
	return m, nil
}

// ttlOf turns memcached's Expiration into the kernel's store flag and TTL.
func ttlOf(exp int32) (uint32, uint64) {
	const month = 30 * 24 * 3600
	switch {
	case exp == 0:
		return 0, 0 // the cache's default
	case exp < 0:
		return cacheTTL, 1 // expired at once
	case exp > month:
		d := time.Until(time.Unix(int64(exp), 0))
		if d <= 0 {
			return cacheTTL, 1
		}
		return cacheTTL, uint64(d)
	}
	return cacheTTL, uint64(exp) * uint64(time.Second)
}

func (c *Cache) store(op uint32, it *Item) error {
	if err := checkKey(it.Key); err != nil {
		return err
	}
	if it.Flags != 0 {
		return ErrFlags
	}
	fl, ttl := ttlOf(it.Expiration)
	s := kCacheStore{Size: uint32(unsafe.Sizeof(kCacheStore{})), Flags: fl,
		Key: strPtr(it.Key), KeyLen: uint32(len(it.Key)), Op: op,
		Value: bytesPtr(it.Value), ValueLen: uint64(len(it.Value)), TTLNs: ttl}
	if op == cacheOpCAS {
		s.CAS = it.CasID
	}
	err := c.with(func(fd int) error {
		_, err := ioctl(fd, iocCacheStore, unsafe.Pointer(&s))
		return err
	})
	switch {
	case err == nil:
		it.CasID = s.CAS
		return nil
	case err == unix.EEXIST && op == cacheOpAdd,
		err == unix.ENOENT && (op == cacheOpReplace || op == cacheOpCAS):
		return ErrNotStored
	case err == unix.ESTALE && op == cacheOpCAS:
		return ErrCASConflict
	}
	return err
}

// Set stores the item whether or not the key is there.
func (c *Cache) Set(item *Item) error { return c.store(cacheOpSet, item) }

// Add stores the item only if the key is absent (ErrNotStored otherwise).
func (c *Cache) Add(item *Item) error { return c.store(cacheOpAdd, item) }

// Replace stores the item only if the key is present (ErrNotStored).
func (c *Cache) Replace(item *Item) error { return c.store(cacheOpReplace, item) }

// CompareAndSwap stores the item only if the entry is still at the
// version item.CasID (from Get or a store): ErrCASConflict if it was
// changed since, ErrNotStored if it is gone.
func (c *Cache) CompareAndSwap(item *Item) error { return c.store(cacheOpCAS, item) }

func (c *Cache) keyop(req uintptr, key string, flags uint32, ttl uint64) error {
	if err := checkKey(key); err != nil {
		return err
	}
	k := kCacheKey{Size: uint32(unsafe.Sizeof(kCacheKey{})), Flags: flags,
		Key: strPtr(key), KeyLen: uint32(len(key)), TTLNs: ttl}
	err := c.with(func(fd int) error {
		_, err := ioctl(fd, req, unsafe.Pointer(&k))
		return err
	})
	if err == unix.ENOENT {
		return ErrCacheMiss
	}
	return err
}

// Delete removes the key (ErrCacheMiss if absent).
func (c *Cache) Delete(key string) error { return c.keyop(iocCacheDelete, key, 0, 0) }

// Touch gives the key a new expiration (Item.Expiration's meaning) without
// reading it (ErrCacheMiss if absent).
func (c *Cache) Touch(key string, seconds int32) error {
	fl, ttl := ttlOf(seconds)
	if fl == 0 {
		return c.keyop(iocCacheTouch, key, cacheDefaultTTL, 0)
	}
	return c.keyop(iocCacheTouch, key, 0, ttl)
}

func (c *Cache) count(key string, flags uint32, delta uint64) (uint64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	i := kCacheIncr{Size: uint32(unsafe.Sizeof(kCacheIncr{})), Flags: flags,
		Key: strPtr(key), KeyLen: uint32(len(key)), Delta: delta}
	err := c.with(func(fd int) error {
		_, err := ioctl(fd, iocCacheIncr, unsafe.Pointer(&i))
		return err
	})
	if err == unix.ENOENT {
		return 0, ErrCacheMiss
	}
	return i.Value, err
}

// Increment adds delta to the decimal number stored at key (wrapping at
// 2^64, as memcached) and returns the new value; ErrCacheMiss if absent,
// EINVAL if the value is not a number.
func (c *Cache) Increment(key string, delta uint64) (uint64, error) {
	return c.count(key, 0, delta)
}

// Decrement subtracts delta, stopping at 0 (memcached's decr).
func (c *Cache) Decrement(key string, delta uint64) (uint64, error) {
	return c.count(key, cacheDecr, delta)
}

// DeleteAll removes every entry (the owner only: EPERM otherwise).
func (c *Cache) DeleteAll() error {
	h := kHdr{Size: uint32(unsafe.Sizeof(kHdr{}))}
	return c.with(func(fd int) error {
		_, err := ioctl(fd, iocCacheFlush, unsafe.Pointer(&h))
		return err
	})
}

// CacheStats is a cache's state as the kernel reports it.
type CacheStats struct {
	Config                                               CacheConfig
	Bytes, Entries, Hits, Misses, Evictions, Expirations uint64
}

// Stats reads the cache's state.
func (c *Cache) Stats() (CacheStats, error) {
	i := kCacheInfo{Size: uint32(unsafe.Sizeof(kCacheInfo{}))}
	err := c.with(func(fd int) error {
		_, err := ioctl(fd, iocCacheInfo, unsafe.Pointer(&i))
		return err
	})
	return CacheStats{CacheConfig{i.MaxBytes, i.MaxEntries, i.MaxValue, time.Duration(i.DefTTL)},
		i.Bytes, i.Entries, i.Hits, i.Misses, i.Evictions, i.Expirations}, err
}

// storePinned is the breaker's store: ttl 0 (never expires), pinned.
func (c *Cache) storePinned(op uint32, key string, val []byte, cas *uint64) error {
	s := kCacheStore{Size: uint32(unsafe.Sizeof(kCacheStore{})), Flags: cacheTTL | cachePin,
		Key: strPtr(key), KeyLen: uint32(len(key)), Op: op,
		Value: bytesPtr(val), ValueLen: uint64(len(val))}
	if cas != nil {
		s.CAS = *cas
	}
	err := c.with(func(fd int) error {
		_, err := ioctl(fd, iocCacheStore, unsafe.Pointer(&s))
		return err
	})
	if err == nil && cas != nil {
		*cas = s.CAS
	}
	return err
}
