-- localbase's pure SQL/PL/pgSQL stand-in for contrib/uuid-ossp 1.1 (the bundled PostgreSQL has
-- no uuid-ossp library). Same functions, signatures, volatility and strictness as the real one:
--   uuid_nil(), uuid_ns_dns(), uuid_ns_url(), uuid_ns_oid(), uuid_ns_x500(),
--   uuid_generate_v1(), uuid_generate_v1mc(), uuid_generate_v3(namespace uuid, name text),
--   uuid_generate_v4(), uuid_generate_v5(namespace uuid, name text).
-- Nothing of the real extension is missing. Differences: v1 uses a random node (multicast and
-- local bits set) like v1mc, so it never reveals a MAC address; its clock sequence is random on
-- every call. Internal helper: _uuid_ossp_sha1(bytea) (SHA-1, which core PostgreSQL lacks).

\echo Use "CREATE EXTENSION \"uuid-ossp\"" to load this file. \quit

-- Constants ---------------------------------------------------------------------------------

create function uuid_nil() returns uuid
language sql immutable strict parallel safe
return '00000000-0000-0000-0000-000000000000'::uuid;

create function uuid_ns_dns() returns uuid
language sql immutable strict parallel safe
return '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::uuid;

create function uuid_ns_url() returns uuid
language sql immutable strict parallel safe
return '6ba7b811-9dad-11d1-80b4-00c04fd430c8'::uuid;

create function uuid_ns_oid() returns uuid
language sql immutable strict parallel safe
return '6ba7b812-9dad-11d1-80b4-00c04fd430c8'::uuid;

create function uuid_ns_x500() returns uuid
language sql immutable strict parallel safe
return '6ba7b814-9dad-11d1-80b4-00c04fd430c8'::uuid;

-- SHA-1 (FIPS 180-4) over any input, 32-bit words held in bigint and masked ------------------

create function _uuid_ossp_sha1(msg bytea) returns bytea
language plpgsql immutable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    m constant bigint := 4294967295;  -- 2^32 - 1
    -- 0x80, zero bytes up to 56 mod 64, then the bit length as a big-endian 64-bit integer
    p bytea := msg || '\x80'::bytea
               || decode(repeat('00', (55 - length(msg) % 64 + 64) % 64), 'hex')
               || int8send(length(msg)::bigint * 8);
    h0 bigint := 1732584193;  -- 0x67452301
    h1 bigint := 4023233417;  -- 0xefcdab89
    h2 bigint := 2562383102;  -- 0x98badcfe
    h3 bigint := 271733878;   -- 0x10325476
    h4 bigint := 3285377520;  -- 0xc3d2e1f0
    w bigint[] := array_fill(0::bigint, array[80]);
    a bigint; b bigint; c bigint; d bigint; e bigint; t bigint;
    o int;
begin
    for blk in 0 .. length(p) / 64 - 1 loop
        o := blk * 64;
        for i in 1 .. 16 loop
            w[i] := (get_byte(p, o)::bigint << 24) | (get_byte(p, o + 1) << 16)
                    | (get_byte(p, o + 2) << 8) | get_byte(p, o + 3);
            o := o + 4;
        end loop;
        for i in 17 .. 80 loop
            t := w[i - 3] # w[i - 8] # w[i - 14] # w[i - 16];
            w[i] := ((t << 1) | (t >> 31)) & m;
        end loop;
        a := h0; b := h1; c := h2; d := h3; e := h4;
        for i in 1 .. 20 loop
            t := (((a << 5) | (a >> 27)) & m) + ((b & c) | (~b & d)) + e + 1518500249 + w[i];
            e := d; d := c; c := ((b << 30) | (b >> 2)) & m; b := a; a := t & m;
        end loop;
        for i in 21 .. 40 loop
            t := (((a << 5) | (a >> 27)) & m) + (b # c # d) + e + 1859775393 + w[i];
            e := d; d := c; c := ((b << 30) | (b >> 2)) & m; b := a; a := t & m;
        end loop;
        for i in 41 .. 60 loop
            t := (((a << 5) | (a >> 27)) & m) + ((b & c) | (b & d) | (c & d)) + e + 2400959708
                 + w[i];
            e := d; d := c; c := ((b << 30) | (b >> 2)) & m; b := a; a := t & m;
        end loop;
        for i in 61 .. 80 loop
            t := (((a << 5) | (a >> 27)) & m) + (b # c # d) + e + 3395469782 + w[i];
            e := d; d := c; c := ((b << 30) | (b >> 2)) & m; b := a; a := t & m;
        end loop;
        h0 := (h0 + a) & m; h1 := (h1 + b) & m; h2 := (h2 + c) & m;
        h3 := (h3 + d) & m; h4 := (h4 + e) & m;
    end loop;
    return substr(int8send(h0), 5) || substr(int8send(h1), 5) || substr(int8send(h2), 5)
           || substr(int8send(h3), 5) || substr(int8send(h4), 5);
end
$$;

-- Time-based UUIDs (RFC 4122 version 1) --------------------------------------------------------
-- The 60-bit timestamp counts 100 ns intervals since 1582-10-15 (clock_timestamp() has 1 us
-- resolution; the last decimal digit is random). The clock sequence (14 bits) and the node
-- (48 bits) are random on every call, with the node's IEEE 802 multicast and locally-administered
-- bits set: unlike the real uuid_generate_v1(), this v1 does not reveal the host's MAC address.

create function uuid_generate_v1mc() returns uuid
language plpgsql volatile strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    ts bigint := floor(extract(epoch from clock_timestamp()) * 10000000)::bigint
                 + floor(random() * 10)::bigint
                 + 122192928000000000;  -- 100 ns intervals from 1582-10-15 to 1970-01-01
    r bytea := uuid_send(gen_random_uuid());  -- strong random bits for the clock seq and node
begin
    return encode(
        substr(int8send(ts & 4294967295), 5)                   -- time_low
        || substr(int8send((ts >> 32) & 65535), 7)             -- time_mid
        || substr(int8send(((ts >> 48) & 4095) | 4096), 7)     -- time_hi and version 1
        || set_byte(substr(r, 9, 2), 0, (get_byte(r, 8) & 63) | 128)  -- variant, clock seq
        || set_byte(substr(r, 11, 6), 0, get_byte(r, 10) | 3), -- node: multicast, local
        'hex')::uuid;
end
$$;

create function uuid_generate_v1() returns uuid
language sql volatile strict parallel safe
return @extschema@.uuid_generate_v1mc();

-- Name-based UUIDs: version 3 (MD5) and version 5 (SHA-1) of the namespace's 16 bytes followed
-- by the name's bytes, with the version and variant bits set (RFC 4122 section 4.3).

create function uuid_generate_v3(namespace uuid, name text) returns uuid
language plpgsql immutable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    h bytea := decode(md5(uuid_send(namespace) || convert_to(name, getdatabaseencoding())), 'hex');
begin
    h := set_byte(h, 6, (get_byte(h, 6) & 15) | 48);
    return encode(set_byte(h, 8, (get_byte(h, 8) & 63) | 128), 'hex')::uuid;
end
$$;

create function uuid_generate_v5(namespace uuid, name text) returns uuid
language plpgsql immutable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    h bytea := substr(@extschema@._uuid_ossp_sha1(
        uuid_send(namespace) || convert_to(name, getdatabaseencoding())), 1, 16);
begin
    h := set_byte(h, 6, (get_byte(h, 6) & 15) | 80);
    return encode(set_byte(h, 8, (get_byte(h, 8) & 63) | 128), 'hex')::uuid;
end
$$;

-- Random UUIDs (version 4): core PostgreSQL's, from the strong random source.
create function uuid_generate_v4() returns uuid
language sql volatile strict parallel safe
return pg_catalog.gen_random_uuid();

comment on function uuid_nil() is 'localbase SQL stand-in for uuid-ossp: the nil UUID';
comment on function uuid_ns_dns() is 'localbase SQL stand-in for uuid-ossp: the DNS namespace';
comment on function uuid_ns_url() is 'localbase SQL stand-in for uuid-ossp: the URL namespace';
comment on function uuid_ns_oid() is 'localbase SQL stand-in for uuid-ossp: the ISO OID namespace';
comment on function uuid_ns_x500() is
    'localbase SQL stand-in for uuid-ossp: the X.500 DN namespace';
comment on function _uuid_ossp_sha1(bytea) is
    'localbase SQL stand-in for uuid-ossp: SHA-1 of the bytes (internal to uuid_generate_v5)';
comment on function uuid_generate_v1() is
    'localbase SQL stand-in for uuid-ossp: version 1 UUID with a random multicast node (no MAC)';
comment on function uuid_generate_v1mc() is
    'localbase SQL stand-in for uuid-ossp: version 1 UUID with a random multicast node';
comment on function uuid_generate_v3(uuid, text) is
    'localbase SQL stand-in for uuid-ossp: version 3 (MD5) name-based UUID';
comment on function uuid_generate_v4() is
    'localbase SQL stand-in for uuid-ossp: version 4 random UUID (core gen_random_uuid)';
comment on function uuid_generate_v5(uuid, text) is
    'localbase SQL stand-in for uuid-ossp: version 5 (SHA-1) name-based UUID';
