package jail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// JLSArgv lists every active jail in one command, machine-readable:
// `jls --libxo json -v`. -v selects jid, hostname, path, name, state,
// cpusetid and the IPv4/IPv6 address lists (jls(8)).
func JLSArgv() []string {
	return []string{JlsPath, "--libxo", "json", "-v"}
}

// JLSOneArgv is `jls -j NAME jid`: it exits 0 when the jail exists and
// non-zero ("jail not found") when it does not.
func JLSOneArgv(name string) []string {
	return []string{JlsPath, "-j", name, "jid"}
}

// jlsDoc is the libxo document jls emits: a "jail-information" container
// holding the "jail" list, one instance per jail (see usr.sbin/jls/jls.c).
type jlsDoc struct {
	Version string `json:"__version"`
	Info    *struct {
		Jails []jlsJail `json:"jail"`
	} `json:"jail-information"`
}

type jlsJail struct {
	JID      json.RawMessage `json:"jid"`
	Hostname string          `json:"hostname"`
	Path     string          `json:"path"`
	Name     string          `json:"name"`
	State    string          `json:"state"`
	IPv4     json.RawMessage `json:"ipv4_addrs"`
	IPv6     json.RawMessage `json:"ipv6_addrs"`
	// Without -v, jls names the lists after the parameters.
	IP4Param json.RawMessage `json:"ip4.addr"`
	IP6Param json.RawMessage `json:"ip6.addr"`
}

// ParseJLS parses `jls --libxo json -v` output into Infos, IPv4 addresses
// before IPv6 ones. Jails in the DYING state (listed only with -d) are left
// out: they are on their way out and can no longer be entered.
func ParseJLS(data []byte) ([]Info, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("parse jls output: empty")
	}
	var doc jlsDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse jls output: %w", err)
	}
	if doc.Info == nil {
		return nil, errors.New(`parse jls output: no "jail-information" container`)
	}
	out := make([]Info, 0, len(doc.Info.Jails))
	for i, j := range doc.Info.Jails {
		if strings.EqualFold(j.State, "DYING") {
			continue
		}
		jid, err := parseJID(j.JID)
		if err != nil {
			return nil, fmt.Errorf("parse jls output: jail %d (%s): %w", i, j.Name, err)
		}
		info := Info{Name: j.Name, JID: jid, Path: j.Path, Hostname: j.Hostname}
		if info.Name == "" {
			// jail(8): a jail without a name is known by its jid.
			info.Name = strconv.Itoa(jid)
		}
		for _, raw := range []json.RawMessage{j.IPv4, j.IP4Param, j.IPv6, j.IP6Param} {
			addrs, err := parseAddrList(raw)
			if err != nil {
				return nil, fmt.Errorf("parse jls output: jail %s addresses: %w", info.Name, err)
			}
			info.Addrs = append(info.Addrs, addrs...)
		}
		out = append(out, info)
	}
	return out, nil
}

// parseJID accepts the jid as a JSON number (libxo's rendering of %d) or,
// defensively, as a string holding one.
func parseJID(raw json.RawMessage) (int, error) {
	if len(raw) == 0 {
		return 0, errors.New("no jid")
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		var s string
		if err2 := json.Unmarshal(raw, &s); err2 != nil {
			return 0, fmt.Errorf("jid %s: %w", raw, err)
		}
		n = json.Number(strings.TrimSpace(s))
	}
	id, err := strconv.Atoi(n.String())
	if err != nil {
		return 0, fmt.Errorf("jid %s: %w", raw, err)
	}
	return id, nil
}

// parseAddrList reads an address list. jls opens a list per family and
// emits each address as a leaf-list value; libxo renders that as an array
// of strings. Arrays of objects wrapping the leaf ({"ipv4_addr": ...}) and
// a bare string are accepted too, so a libxo rendering difference between
// releases does not lose the addresses.
func parseAddrList(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one == "" {
			return nil, nil
		}
		return []string{one}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("address list %s: %w", raw, err)
	}
	var out []string
	for _, it := range items {
		var s string
		if err := json.Unmarshal(it, &s); err == nil {
			if s != "" {
				out = append(out, s)
			}
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(it, &obj); err != nil {
			return nil, fmt.Errorf("address %s: want a string or an object", it)
		}
		for _, k := range []string{"ipv4_addr", "ipv6_addr"} {
			if v, ok := obj[k]; ok {
				more, err := parseAddrList(v)
				if err != nil {
					return nil, err
				}
				out = append(out, more...)
			}
		}
	}
	return out, nil
}
