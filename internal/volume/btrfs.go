//lint:file-ignore U1000 the kernel's structs keep fields cove does not set, for their layout

package volume

import (
	"encoding/binary"
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file speaks the btrfs ioctl interface directly, so that cove needs no
// btrfs-progs at run time (only mkfs.btrfs, once, to format the image).
// Struct layouts and numbers follow include/uapi/linux/btrfs.h and
// btrfs_tree.h; btrfs_test.go checks them against the header's values.

// ioctl request encoding (include/uapi/asm-generic/ioctl.h).
const (
	iocWrite     = 1
	iocRead      = 2
	iocSizeShift = 16
	iocDirShift  = 30
	btrfsMagic   = 0x94
)

// Field sizes from linux/btrfs.h.
const (
	btrfsPathNameMax   = 4087
	btrfsSubvolNameMax = 4039
	btrfsInoLookupMax  = 4080
	btrfsSearchBufSize = 4096 - 104 // 4096 - sizeof(struct btrfs_ioctl_search_key)
)

// Flags and commands.
const (
	subvolQgroupInherit   = 1 << 2 // BTRFS_SUBVOL_QGROUP_INHERIT
	subvolSpecByID        = 1 << 4 // BTRFS_SUBVOL_SPEC_BY_ID
	qgroupInheritSetLimit = 1 << 0 // BTRFS_QGROUP_INHERIT_SET_LIMITS
	qgroupLimitMaxRfer    = 1 << 0 // BTRFS_QGROUP_LIMIT_MAX_RFER
	quotaCtlEnable        = 1      // BTRFS_QUOTA_CTL_ENABLE

	qgroupStatusRescan       = 1 << 1 // BTRFS_QGROUP_STATUS_FLAG_RESCAN
	qgroupStatusInconsistent = 1 << 2 // BTRFS_QGROUP_STATUS_FLAG_INCONSISTENT
)

// Tree and key constants from linux/btrfs_tree.h.
const (
	rootTreeObjectID  = 1
	quotaTreeObjectID = 8
	firstFreeObjectID = 256         // BTRFS_FIRST_FREE_OBJECTID: first subvolume id, and the inode of a subvolume root
	lastFreeObjectID  = 1<<64 - 256 // BTRFS_LAST_FREE_OBJECTID
	rootItemKey       = 132         // BTRFS_ROOT_ITEM_KEY
	rootRefKey        = 156         // BTRFS_ROOT_REF_KEY: (parent, ROOT_REF, child)
	qgroupStatusKey   = 240         // BTRFS_QGROUP_STATUS_KEY
	qgroupInfoKey     = 242         // BTRFS_QGROUP_INFO_KEY: (0, INFO, qgroupid)
	qgroupLevelShift  = 48          // qgroupid = level<<48 | id
	maxU64            = 1<<64 - 1
)

// struct btrfs_ioctl_vol_args
type volArgs struct {
	fd   int64
	name [btrfsPathNameMax + 1]byte
}

// struct btrfs_ioctl_vol_args_v2. The first union holds {size, qgroup_inherit
// pointer}; the second holds name or subvolid. The typed pointer keeps the
// inherit struct visible to the garbage collector during the call; it makes
// the layout right only on 64-bit platforms, which Open checks.
type volArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	size    uint64
	inherit *qgroupInherit
	_       [2]uint64
	name    [btrfsSubvolNameMax + 1]byte // or subvolid in the first 8 bytes
}

// struct btrfs_qgroup_limit
type qgroupLimit struct {
	flags   uint64
	maxRfer uint64
	maxExcl uint64
	rsvRfer uint64
	rsvExcl uint64
}

// struct btrfs_qgroup_inherit, without the trailing qgroups[] (we pass none).
type qgroupInherit struct {
	flags         uint64
	numQgroups    uint64
	numRefCopies  uint64
	numExclCopies uint64
	lim           qgroupLimit
}

// struct btrfs_ioctl_quota_ctl_args
type quotaCtlArgs struct {
	cmd    uint64
	status uint64
}

// struct btrfs_ioctl_qgroup_create_args
type qgroupCreateArgs struct {
	create   uint64
	qgroupid uint64
}

// struct btrfs_ioctl_quota_rescan_args
type quotaRescanArgs struct {
	flags    uint64
	progress uint64
	_        [6]uint64
}

// struct btrfs_ioctl_ino_lookup_args
type inoLookupArgs struct {
	treeid   uint64
	objectid uint64
	name     [btrfsInoLookupMax]byte
}

// struct btrfs_ioctl_search_key
type searchKey struct {
	treeID      uint64
	minObjectID uint64
	maxObjectID uint64
	minOffset   uint64
	maxOffset   uint64
	minTransid  uint64
	maxTransid  uint64
	minType     uint32
	maxType     uint32
	nrItems     uint32
	_           uint32
	_           [4]uint64
}

// struct btrfs_ioctl_search_args
type searchArgs struct {
	key searchKey
	buf [btrfsSearchBufSize]byte
}

// struct btrfs_ioctl_search_header
type searchHeader struct {
	transid  uint64
	objectid uint64
	offset   uint64
	typ      uint32
	len      uint32
}

// Request numbers: _IOW/_IOR/_IOWR(BTRFS_IOCTL_MAGIC, nr, type).
const (
	iocSnapCreate      = iocWrite<<iocDirShift | unsafe.Sizeof(volArgs{})<<iocSizeShift | btrfsMagic<<8 | 1
	iocSubvolCreate    = iocWrite<<iocDirShift | unsafe.Sizeof(volArgs{})<<iocSizeShift | btrfsMagic<<8 | 14
	iocTreeSearch      = (iocRead|iocWrite)<<iocDirShift | unsafe.Sizeof(searchArgs{})<<iocSizeShift | btrfsMagic<<8 | 17
	iocInoLookup       = (iocRead|iocWrite)<<iocDirShift | unsafe.Sizeof(inoLookupArgs{})<<iocSizeShift | btrfsMagic<<8 | 18
	iocSnapCreateV2    = iocWrite<<iocDirShift | unsafe.Sizeof(volArgsV2{})<<iocSizeShift | btrfsMagic<<8 | 23
	iocSubvolCreateV2  = iocWrite<<iocDirShift | unsafe.Sizeof(volArgsV2{})<<iocSizeShift | btrfsMagic<<8 | 24
	iocQuotaCtl        = (iocRead|iocWrite)<<iocDirShift | unsafe.Sizeof(quotaCtlArgs{})<<iocSizeShift | btrfsMagic<<8 | 40
	iocQgroupCreate    = iocWrite<<iocDirShift | unsafe.Sizeof(qgroupCreateArgs{})<<iocSizeShift | btrfsMagic<<8 | 42
	iocQuotaRescan     = iocWrite<<iocDirShift | unsafe.Sizeof(quotaRescanArgs{})<<iocSizeShift | btrfsMagic<<8 | 44
	iocSnapDestroyV2   = iocWrite<<iocDirShift | unsafe.Sizeof(volArgsV2{})<<iocSizeShift | btrfsMagic<<8 | 63
	sizeofVolArgsV2    = 4096 // what the kernel expects; Open refuses to run if volArgsV2 differs
	sizeofInheritNoIDs = unsafe.Sizeof(qgroupInherit{})
)

// fstrimRange is struct fstrim_range, the argument of FITRIM.
type fstrimRange struct {
	start, length, minLen uint64
}

// iocFitrim is FITRIM, _IOWR('X', 121, struct fstrim_range).
const iocFitrim = (iocRead|iocWrite)<<iocDirShift | unsafe.Sizeof(fstrimRange{})<<iocSizeShift | 'X'<<8 | 121

// ioctl makes one ioctl call whose argument is a pointer to a struct.
func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

// subvolCreate creates subvolume name in the directory dirFd with a limit of
// maxRfer referenced bytes, set atomically at creation through qgroup
// inheritance so that no window exists in which the subvolume is unlimited.
func subvolCreate(dirFd int, name string, maxRfer uint64) error {
	inherit := &qgroupInherit{
		flags: qgroupInheritSetLimit,
		lim:   qgroupLimit{flags: qgroupLimitMaxRfer, maxRfer: maxRfer},
	}
	args := &volArgsV2{flags: subvolQgroupInherit, size: uint64(sizeofInheritNoIDs), inherit: inherit}
	copy(args.name[:btrfsSubvolNameMax], name)
	return ioctl(dirFd, iocSubvolCreateV2, unsafe.Pointer(args))
}

// subvolDestroy deletes the subvolume name, a child of dirFd, whatever it
// contains except nested subvolumes (ENOTEMPTY). The space is reclaimed in the
// background by the btrfs cleaner thread.
func subvolDestroy(dirFd int, name string) error {
	args := &volArgsV2{}
	copy(args.name[:btrfsSubvolNameMax], name)
	return ioctl(dirFd, iocSnapDestroyV2, unsafe.Pointer(args))
}

// subvolDestroyByID deletes subvolume id; fd is any file on the filesystem.
// Deleting by id needs no path, so it never walks directories user code made.
func subvolDestroyByID(fd int, id uint64) error {
	args := &volArgsV2{flags: subvolSpecByID}
	binary.NativeEndian.PutUint64(args.name[:8], id)
	return ioctl(fd, iocSnapDestroyV2, unsafe.Pointer(args))
}

// subvolID returns the id of the subvolume that holds fd.
func subvolID(fd int) (uint64, error) {
	args := &inoLookupArgs{objectid: firstFreeObjectID}
	if err := ioctl(fd, iocInoLookup, unsafe.Pointer(args)); err != nil {
		return 0, err
	}
	return args.treeid, nil
}

// quotaEnable turns qgroups on; it is a no-op when they already are.
func quotaEnable(fd int) error {
	args := &quotaCtlArgs{cmd: quotaCtlEnable}
	return ioctl(fd, iocQuotaCtl, unsafe.Pointer(args))
}

// quotaRescan starts a rescan of all qgroup numbers.
func quotaRescan(fd int) error {
	return ioctl(fd, iocQuotaRescan, unsafe.Pointer(&quotaRescanArgs{}))
}

// qgroupRemove deletes qgroup 0/id.
func qgroupRemove(fd int, id uint64) error {
	args := &qgroupCreateArgs{create: 0, qgroupid: id}
	return ioctl(fd, iocQgroupCreate, unsafe.Pointer(args))
}

// treeItem is one item returned by a tree search.
type treeItem struct {
	objectid uint64
	typ      uint32
	offset   uint64
	data     []byte // little-endian on-disk item; valid only during the callback
}

// treeSearch calls fn for every item of type typ in tree whose key lies
// between (minObj, typ, minOff) and (maxObj, typ, maxOff). The kernel treats
// the bounds as one 136-bit range, so items of other types inside it are
// skipped here.
func treeSearch(fd int, tree, minObj, maxObj uint64, typ uint32, minOff, maxOff uint64, fn func(treeItem) error) error {
	args := &searchArgs{key: searchKey{
		treeID:      tree,
		minObjectID: minObj, maxObjectID: maxObj,
		minOffset: minOff, maxOffset: maxOff,
		minTransid: 0, maxTransid: maxU64,
		minType: typ, maxType: typ,
	}}
	hdrSize := int(unsafe.Sizeof(searchHeader{}))
	for {
		args.key.nrItems = 4096
		if err := ioctl(fd, iocTreeSearch, unsafe.Pointer(args)); err != nil {
			return err
		}
		n := int(args.key.nrItems)
		if n == 0 {
			return nil
		}
		var last searchHeader
		off := 0
		for range n {
			if off+hdrSize > len(args.buf) {
				return errors.New("tree search: truncated result")
			}
			h := (*searchHeader)(unsafe.Pointer(&args.buf[off]))
			off += hdrSize
			if off+int(h.len) > len(args.buf) {
				return errors.New("tree search: truncated item")
			}
			if h.typ == typ {
				item := treeItem{objectid: h.objectid, typ: h.typ, offset: h.offset, data: args.buf[off : off+int(h.len)]}
				if err := fn(item); err != nil {
					return err
				}
			}
			off += int(h.len)
			last = *h
		}
		// Continue just after the last key returned.
		switch {
		case last.offset < maxU64:
			args.key.minObjectID, args.key.minType, args.key.minOffset = last.objectid, last.typ, last.offset+1
		case last.typ < 255:
			args.key.minObjectID, args.key.minType, args.key.minOffset = last.objectid, last.typ+1, 0
		case last.objectid < maxU64:
			args.key.minObjectID, args.key.minType, args.key.minOffset = last.objectid+1, 0, 0
		default:
			return nil
		}
		if args.key.minObjectID > maxObj ||
			args.key.minObjectID == maxObj && args.key.minType > typ ||
			args.key.minObjectID == maxObj && args.key.minType == typ && args.key.minOffset > maxOff {
			return nil
		}
	}
}

// qgroupUsage returns the referenced bytes of qgroup 0/id as of the last
// committed transaction; ok is false when the qgroup does not exist.
func qgroupUsage(fd int, id uint64) (rfer uint64, ok bool, err error) {
	err = treeSearch(fd, quotaTreeObjectID, 0, 0, qgroupInfoKey, id, id, func(it treeItem) error {
		// struct btrfs_qgroup_info_item { generation, rfer, rfer_cmpr, excl, excl_cmpr }
		if len(it.data) >= 16 {
			rfer, ok = binary.LittleEndian.Uint64(it.data[8:16]), true
		}
		return nil
	})
	return rfer, ok, err
}

// qgroupStatus returns the flags of the quota status item.
func qgroupStatus(fd int) (flags uint64, err error) {
	err = treeSearch(fd, quotaTreeObjectID, 0, 0, qgroupStatusKey, 0, 0, func(it treeItem) error {
		// struct btrfs_qgroup_status_item { version, generation, flags, rescan, ... }
		if len(it.data) >= 24 {
			flags = binary.LittleEndian.Uint64(it.data[16:24])
		}
		return nil
	})
	return flags, err
}

// level0Qgroups returns the ids of all qgroups 0/id.
func level0Qgroups(fd int) ([]uint64, error) {
	var ids []uint64
	err := treeSearch(fd, quotaTreeObjectID, 0, 0, qgroupInfoKey, 0, 1<<qgroupLevelShift-1, func(it treeItem) error {
		ids = append(ids, it.offset)
		return nil
	})
	return ids, err
}

// subvolumes returns the ids of all subvolumes that have a root item, which
// includes deleted ones the cleaner has not dropped yet.
func subvolumes(fd int) (map[uint64]bool, error) {
	ids := make(map[uint64]bool)
	err := treeSearch(fd, rootTreeObjectID, firstFreeObjectID, lastFreeObjectID, rootItemKey, 0, maxU64, func(it treeItem) error {
		ids[it.objectid] = true
		return nil
	})
	return ids, err
}

// childSubvolumes returns the ids of the subvolumes directly inside subvolume id.
func childSubvolumes(fd int, id uint64) ([]uint64, error) {
	var ids []uint64
	err := treeSearch(fd, rootTreeObjectID, id, id, rootRefKey, 0, maxU64, func(it treeItem) error {
		ids = append(ids, it.offset)
		return nil
	})
	return ids, err
}

// descendants returns every subvolume nested in id, deepest first, so that
// destroying them in order never meets a non-empty parent.
func descendants(fd int, id uint64) ([]uint64, error) {
	var out []uint64
	var walk func(uint64, int) error
	walk = func(parent uint64, depth int) error {
		if depth > 64 {
			return errors.New("subvolumes nested too deeply")
		}
		kids, err := childSubvolumes(fd, parent)
		if err != nil {
			return err
		}
		for _, k := range kids {
			if err := walk(k, depth+1); err != nil {
				return err
			}
			out = append(out, k)
		}
		return nil
	}
	return out, walk(id, 0)
}

// layoutSupported reports whether the Go structs match the kernel's; the
// pointer in volArgsV2 makes them differ on 32-bit platforms.
func layoutSupported() bool {
	return unsafe.Sizeof(volArgsV2{}) == sizeofVolArgsV2
}
