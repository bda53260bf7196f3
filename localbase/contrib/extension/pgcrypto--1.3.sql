-- localbase's pure SQL/PL/pgSQL stand-in for contrib/pgcrypto 1.3 (the bundled PostgreSQL has no
-- pgcrypto library). Present, with the real signatures, volatility and error messages:
--   digest(text|bytea, text), hmac(text, text, text), hmac(bytea, bytea, text)
--     for md5, sha1, sha224, sha256, sha384, sha512 (any letter case);
--   gen_random_bytes(integer), gen_random_uuid();
--   crypt(text, text), gen_salt(text), gen_salt(text, integer) for md5 ($1$) and bf ($2a$, and
--     verifying $2x$ hashes).
-- Not present: crypt/gen_salt for des, xdes, sha256crypt and sha512crypt (gen_salt raises
-- feature_not_supported, crypt too); OpenSSL's other digests (ripemd160, sha3-*, ...);
-- encrypt, decrypt, encrypt_iv, decrypt_iv, the pgp_* functions, armor, dearmor and
-- pgp_armor_headers (not defined at all). Internal helpers are named _pgcrypto_*.

\echo Use "CREATE EXTENSION pgcrypto" to load this file. \quit

-- Hashes ------------------------------------------------------------------------------------

-- SHA-1 (FIPS 180-4), which core PostgreSQL lacks; 32-bit words held in bigint and masked.
-- (md5 and the SHA-2 family are core functions.)
create function _pgcrypto_sha1(msg bytea) returns bytea
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

-- The algorithm name as pgcrypto looks it up (ASCII letters lowered, cut to 63 bytes like an
-- identifier); an unknown one raises pgcrypto's error.
create function _pgcrypto_algorithm(name text) returns text
language plpgsql immutable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    n text := translate(name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
begin
    while octet_length(n) > 63 loop
        n := left(n, -1);
    end loop;
    if n in ('md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512') then
        return n;
    end if;
    raise exception 'Cannot use "%": No such hash algorithm', n
        using errcode = 'invalid_parameter_value';
end
$$;

-- The digest of the bytes with an algorithm already checked by _pgcrypto_algorithm.
create function _pgcrypto_hash(data bytea, algorithm text) returns bytea
language sql immutable strict parallel safe
set search_path = pg_catalog, pg_temp
return case algorithm
    when 'md5' then decode(md5(data), 'hex')
    when 'sha1' then @extschema@._pgcrypto_sha1(data)
    when 'sha224' then sha224(data)
    when 'sha256' then sha256(data)
    when 'sha384' then sha384(data)
    when 'sha512' then sha512(data)
end;

create function digest(bytea, text) returns bytea
language sql immutable strict parallel safe
set search_path = pg_catalog, pg_temp
return @extschema@._pgcrypto_hash($1, @extschema@._pgcrypto_algorithm($2));

create function digest(text, text) returns bytea
language sql immutable strict parallel safe
set search_path = pg_catalog, pg_temp
return @extschema@.digest(convert_to($1, getdatabaseencoding()), $2);

-- HMAC (RFC 2104): H((K ^ opad) || H((K ^ ipad) || data)), K zero-padded to the hash's block
-- (64 bytes, 128 for sha384 and sha512) after hashing a longer key.
create function hmac(bytea, bytea, text) returns bytea
language plpgsql immutable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    algorithm text := @extschema@._pgcrypto_algorithm($3);
    block int := case when algorithm in ('sha384', 'sha512') then 128 else 64 end;
    k bytea := $2;
    ipad bytea;
    opad bytea;
begin
    if length(k) > block then
        k := @extschema@._pgcrypto_hash(k, algorithm);
    end if;
    k := k || decode(repeat('00', block - length(k)), 'hex');
    ipad := k;
    opad := k;
    for i in 0 .. block - 1 loop
        ipad := set_byte(ipad, i, get_byte(k, i) # 54);  -- 0x36
        opad := set_byte(opad, i, get_byte(k, i) # 92);  -- 0x5c
    end loop;
    return @extschema@._pgcrypto_hash(
        opad || @extschema@._pgcrypto_hash(ipad || $1, algorithm), algorithm);
end
$$;

create function hmac(text, text, text) returns bytea
language sql immutable strict parallel safe
set search_path = pg_catalog, pg_temp
return @extschema@.hmac(convert_to($1, getdatabaseencoding()),
                        convert_to($2, getdatabaseencoding()), $3);

-- Random ------------------------------------------------------------------------------------

-- Strong random bytes: core gen_random_uuid() draws 16 bytes from pg_strong_random() and then
-- overwrites the version (byte 6) and variant (byte 8) bits, so only bytes 0-5, 7 and 9-15 of
-- each UUID are taken.
create function gen_random_bytes(integer) returns bytea
language plpgsql volatile strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    r bytea := '';
    u bytea;
begin
    if $1 < 1 or $1 > 1024 then
        raise exception 'Length not in range'
            using errcode = 'external_routine_invocation_exception';
    end if;
    while length(r) < $1 loop
        u := uuid_send(gen_random_uuid());
        r := r || substr(u, 1, 6) || substr(u, 8, 1) || substr(u, 10, 7);
    end loop;
    return substr(r, 1, $1);
end
$$;

create function gen_random_uuid() returns uuid
language sql volatile parallel safe
return pg_catalog.gen_random_uuid();

-- Password hashing ------------------------------------------------------------------------------

-- MD5-crypt ("$1$", as in FreeBSD, glibc and pgcrypto's crypt-md5.c): salt of up to 8 bytes
-- ending at the first '$', then 1000 rounds of MD5.
create function _pgcrypto_md5crypt(pw bytea, setting bytea) returns text
language plpgsql immutable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    itoa64 constant text := './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    salt bytea := substr(setting, 4, 8);  -- after "$1$"
    fin bytea;
    ctx bytea;
    n int;
    v int;
    result text := '';
begin
    n := position('\x24'::bytea in salt);  -- '$'
    if n > 0 then
        salt := substr(salt, 1, n - 1);
    end if;
    fin := decode(md5(pw || salt || pw), 'hex');
    ctx := pw || '\x243124'::bytea || salt;  -- pw, "$1$", salt
    n := length(pw);
    while n > 0 loop
        ctx := ctx || substr(fin, 1, least(n, 16));
        n := n - 16;
    end loop;
    n := length(pw);
    while n > 0 loop
        ctx := ctx || case when n & 1 = 1 then '\x00'::bytea else substr(pw, 1, 1) end;
        n := n >> 1;
    end loop;
    fin := decode(md5(ctx), 'hex');
    for i in 0 .. 999 loop
        ctx := case when i & 1 = 1 then pw else fin end;
        if i % 3 <> 0 then ctx := ctx || salt; end if;
        if i % 7 <> 0 then ctx := ctx || pw; end if;
        ctx := ctx || case when i & 1 = 1 then fin else pw end;
        fin := decode(md5(ctx), 'hex');
    end loop;
    -- 22 characters: bytes (0,6,12) (1,7,13) (2,8,14) (3,9,15) (4,10,5) 4 each, byte 11 in 2
    for g in 0 .. 5 loop
        v := case when g = 5 then get_byte(fin, 11)
                  else (get_byte(fin, g) << 16) | (get_byte(fin, g + 6) << 8)
                       | get_byte(fin, case when g = 4 then 5 else g + 12 end) end;
        for c in 1 .. case when g = 5 then 2 else 4 end loop
            result := result || substr(itoa64, (v & 63) + 1, 1);
            v := v >> 6;
        end loop;
    end loop;
    return '$1$' || convert_from(salt, getdatabaseencoding()) || '$' || result;
end
$$;

-- Blowfish's initial P-array (18 words) and S-boxes (4 x 256 words): the hexadecimal digits of
-- pi's fractional part.
create function _pgcrypto_bf_init() returns bigint[]
language sql immutable strict parallel safe
set search_path = pg_catalog, pg_temp
begin atomic
    select array_agg(('x' || substr(digits, i * 8 + 1, 8))::bit(32)::bigint order by i)
    from (select
        '243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89452821e638d01377be5466cf34e90c6c'
        'c0ac29b7c97c50dd3f84d5b5b54709179216d5d98979fb1bd1310ba698dfb5ac2ffd72dbd01adfb7b8e1afed6a267e96'
        'ba7c9045f12c7f9924a19947b3916cf70801f2e2858efc16636920d871574e69a458fea3f4933d7e0d95748f728eb658'
        '718bcd5882154aee7b54a41dc25a59b59c30d5392af26013c5d1b023286085f0ca417918b8db38ef8e79dcb0603a180e'
        '6c9e0e8bb01e8a3ed71577c1bd314b2778af2fda55605c60e65525f3aa55ab945748986263e8144055ca396a2aab10b6'
        'b4cc5c341141e8cea15486af7c72e993b3ee1411636fbc2a2ba9c55d741831f6ce5c3e169b87931eafd6ba336c24cf5c'
        '7a325381289586773b8f48986b4bb9afc4bfe81b6628219361d809ccfb21a991487cac605dec8032ef845d5de98575b1'
        'dc262302eb651b8823893e81d396acc50f6d6ff383f442392e0b4482a484200469c8f04a9e1f9b5e21c66842f6e96c9a'
        '670c9c61abd388f06a51a0d2d8542f68960fa728ab5133a36eef0b6c137a3be4ba3bf0507efb2a98a1f1651d39af0176'
        '66ca593e82430e888cee8619456f9fb47d84a5c33b8b5ebee06f75d885c12073401a449f56c16aa64ed3aa62363f7706'
        '1bfedf72429b023d37d0d724d00a1248db0fead349f1c09b075372c980991b7b25d479d8f6e8def7e3fe501ab6794c3b'
        '976ce0bd04c006bac1a94fb6409f60c45e5c9ec2196a246368fb6faf3e6c53b51339b2eb3b52ec6f6dfc511f9b30952c'
        'cc814544af5ebd09bee3d004de334afd660f2807192e4bb3c0cba85745c8740fd20b5f39b9d3fbdb5579c0bd1a60320a'
        'd6a100c6402c7279679f25fefb1fa3cc8ea5e9f8db3222f83c7516dffd616b152f501ec8ad0552ab323db5fafd238760'
        '53317b483e00df829e5c57bbca6f8ca01a87562edf1769dbd542a8f6287effc3ac6732c68c4f5573695b27b0bbca58c8'
        'e1ffa35db8f011a010fa3d98fd2183b84afcb56c2dd1d35b9a53e479b6f84565d28e49bc4bfb9790e1ddf2daa4cb7e33'
        '62fb1341cee4c6e8ef20cada36774c01d07e9efe2bf11fb495dbda4dae909198eaad8e716b93d5a0d08ed1d0afc725e0'
        '8e3c5b2f8e7594b78ff6e2fbf2122b648888b812900df01c4fad5ea0688fc31cd1cff191b3a8c1ad2f2f2218be0e1777'
        'ea752dfe8b021fa1e5a0cc0fb56f74e818acf3d6ce89e299b4a84fe0fd13e0b77cc43b81d2ada8d9165fa26680957705'
        '93cc7314211a1477e6ad206577b5fa86c75442f5fb9d35cfebcdaf0c7b3e89a0d6411bd3ae1e7e4900250e2d2071b35e'
        '226800bb57b8e0af2464369bf009b91e5563911d59dfa6aa78c14389d95a537f207d5ba202e5b9c5832603766295cfa9'
        '11c819684e734a41b3472dca7b14a94a1b5100529a532915d60f573fbc9bc6e42b60a47681e6740008ba6fb5571be91f'
        'f296ec6b2a0dd915b6636521e7b9f9b6ff34052ec585566453b02d5da99f8fa108ba47996e85076a4b7a70e9b5b32944'
        'db75092ec4192623ad6ea6b049a7df7d9cee60b88fedb266ecaa8c71699a17ff5664526cc2b19ee1193602a575094c29'
        'a0591340e4183a3e3f54989a5b429d656b8fe4d699f73fd6a1d29c07efe830f54d2d38e6f0255dc14cdd20868470eb26'
        '6382e9c6021ecc5e09686b3f3ebaefc93c9718146b6a70a1687f358452a0e286b79c5305aa5007373e07841c7fdeae5c'
        '8e7d44ec5716f2b8b03ada37f0500c0df01c1f040200b3ffae0cf51a3cb574b225837a58dc0921bdd19113f97ca92ff6'
        '9432477322f547013ae5e58137c2dadcc8b576349af3dda7a94461460fd0030eecc8c73ea4751e41e238cd993bea0e2f'
        '3280bba1183eb3314e548b384f6db9086f420d03f60a04bf2cb8129024977c795679b072bcaf89afde9a771fd9930810'
        'b38bae12dccf3f2e5512721f2e6b7124501adde69f84cd877a5847187408da17bc9f9abce94b7d8cec7aec3adb851dfa'
        '63094366c464c3d2ef1c18473215d908dd433b3724c2ba1612a14d432a65c45150940002133ae4dd71dff89e10314e55'
        '81ac77d65f11199b043556f1d7a3c76b3c11183b5924a509f28fe6ed97f1fbfa9ebabf2c1e153c6e86e34570eae96fb1'
        '860e5e0a5a3e2ab3771fe71c4e3d06fa2965dcb999e71d0f803e89d65266c8252e4cc9789c10b36ac6150eba94e2ea78'
        'a5fc3c531e0a2df4f2f74ea7361d2b3d1939260f19c279605223a708f71312b6ebadfe6eeac31f66e3bc4595a67bc883'
        'b17f37d1018cff28c332ddefbe6c5aa56558218568ab9802eecea50fdb2f953b2aef7dad5b6e2f841521b62829076170'
        'ecdd4775619f151013cca830eb61bd960334fe1eaa0363cfb5735c904c70a239d59e9e0bcbaade14eecc86bc60622ca7'
        '9cab5cabb2f3846e648b1eaf19bdf0caa02369b9655abb5040685a323c2ab4b3319ee9d5c021b8f79b540b19875fa099'
        '95f7997e623d7da8f837889a97e32d7711ed935f166812810e358829c7e61fd696dedfa17858ba9957f584a51b227263'
        '9b83c3ff1ac24696cdb30aeb532e30548fd948e46dbc312858ebf2ef34c6ffeafe28ed61ee7c3c735d4a14d9e864b7e3'
        '42105d14203e13e045eee2b6a3aaabeadb6c4f15facb4fd0c742f442ef6abbb5654f3b1d41cd2105d81e799e86854dc7'
        'e44b476a3d816250cf62a1f25b8d2646fc8883a0c1c7b6a37f1524c369cb749247848a0b5692b285095bbf00ad19489d'
        '1462b17423820e0058428d2a0c55f5ea1dadf43e233f70613372f0928d937e41d65fecf16c223bdb7cde3759cbee7460'
        '4085f2a7ce77326ea607808419f8509ee8efd85561d99735a969a7aac50c06c25a04abfc800bcadc9e447a2ec3453484'
        'fdd567050e1e9ec9db73dbd3105588cd675fda79e3674340c5c43465713e38d83d28f89ef16dff20153e21e78fb03d4a'
        'e6e39f2bdb83adf7e93d5a68948140f7f64c261c94692934411520f77602d4f7bcf46b2ed4a20068d40824713320f46a'
        '43b7d4b7500061af1e39f62e9724454614214f74bf8b88404d95fc1d96b591af70f4ddd366a02f45bfbc09ec03bd9785'
        '7fac6dd031cb850496eb27b355fd3941da2547e6abca0a9a28507825530429f40a2c86dae9b66dfb68dc1462d7486900'
        '680ec0a427a18dee4f3ffea2e887ad8cb58ce0067af4d6b6aace1e7cd3375fecce78a399406b2a4220fe9e35d9f385b9'
        'ee39d7ab3b124e8b1dc9faf74b6d185626a36631eae397b23a6efa74dd5b43326841e7f7ca7820fbfb0af54ed8feb397'
        '454056acba48952755533a3a20838d87fe6ba9b7d096954b55a867bca1159a58cca9296399e1db33a62a4a563f3125f9'
        '5ef47e1c9029317cfdf8e80204272f7080bb155c05282ce395c11548e4c66d2248c1133fc70f86dc07f9c9ee41041f0f'
        '404779a45d886e17325f51ebd59bc0d1f2bcc18f41113564257b7834602a9c60dff8e8a31f636c1b0e12b4c202e1329e'
        'af664fd1cad181156b2395e0333e92e13b240b62eebeb92285b2a20ee6ba0d99de720c8c2da2f728d012784595b794fd'
        '647d0862e7ccf5f05449a36f877d48fac39dfd27f33e8d1e0a476341992eff743a6f6eabf4f8fd37a812dc60a1ebddf8'
        '991be14cdb6e6b0dc67b55106d672c372765d43bdcd0e804f1290dc7cc00ffa3b5390f92690fed0b667b9ffbcedb7d9c'
        'a091cf0bd9155ea3bb132f88515bad247b9479bf763bd6eb37392eb3cc1159798026e297f42e312d6842ada7c66a2b3b'
        '12754ccc782ef11c6a124237b79251e706a1bbe64bfb63501a6b101811caedfa3d25bdd8e2e1c3c9444216590a121386'
        'd90cec6ed5abea2a64af674eda86a85fbebfe98864e4c3fe9dbc8057f0f7c08660787bf86003604dd1fd8346f6381fb0'
        '7745ae04d736fccc83426b33f01eab71b08041873c005e5f77a057bebde8ae2455464299bf582e614e58f48ff2ddfda2'
        'f474ef388789bdc25366f9c3c8b38e74b475f25546fcd9b97aeb26618b1ddf84846a0e79915f95e2466e598e20b45770'
        '8cd55591c902de4cb90bace1bb8205d011a862487574a99eb77f19b6e0a9dc09662d09a1c4324633e85a1f0209f0be8c'
        '4a99a0251d6efe101ab93d1d0ba5a4dfa186f20f2868f169dcb7da83573906fea1e2ce9b4fcd7f5250115e01a70683fa'
        'a002b5c40de6d0279af88c27773f8641c3604c0661a806b5f0177a28c0f586e0006058aa30dc7d6211e69ed72338ea63'
        '53c2dd94c2c21634bbcbee5690bcb6deebfc7da1ce591d766f05e4094b7c018839720a3d7c927c2486e3725f724d9db9'
        '1ac15bb4d39eb8fced54557808fca5b5d83d7cd34dad0fc41e50ef5eb161e6f8a28514d96c51133c6fd5c7e756e14ec4'
        '362abfceddc6c837d79a323492638212670efa8e406000e03a39ce37d3faf5cfabc277375ac52d1b5cb0679e4fa33742'
        'd382274099bc9bbed5118e9dbf0f7315d62d1c7ec700c47bb78c1b6b21a19045b26eb1be6a366eb45748ab2fbc946e79'
        'c6a376d26549c2c8530ff8ee468dde7dd5730a1d4cd04dc62939bbdba9ba4650ac9526e8be5ee304a1fad5f06a2d519a'
        '63ef8ce29a86ee22c089c2b843242ef6a51e03aa9cf2d0a483c061ba9be96a4d8fe51550ba645bd62826a2f9a73a3ae1'
        '4ba99586ef5562e9c72fefd3f752f7da3f046f6977fa0a5980e4a91587b086019b09e6ad3b3ee593e990fd5a9e34d797'
        '2cf0b7d9022b8b5196d5ac3a017da67dd1cf3ed67c7d2d281f9f25cfadf2b89b5ad6b4725a88f54ce029ac71e019a5e6'
        '47b0acfded93fa9be8d3c48d283b57ccf8d5662979132e28785f0191ed756055f7960e44e3d35e8c15056dd488f46dba'
        '03a161250564f0bdc3eb9e153c9057a297271aeca93a072a1b3f6d9b1e6321f5f59c66fb26dcf3197533d928b155fdf5'
        '035634828aba3cbb28517711c20ad9f8abcc5167ccad925f4de817513830dc8e379d58629320f991ea7a90c2fb3e7bce'
        '5121ce64774fbe32a8b6e37ec3293d4648de53696413e680a2ae0810dd6db22469852dfd09072166b39a460a6445c0dd'
        '586cdecf1c20c8ae5bbef7dd1b588d40ccd2017f6bb4e3bbdda26a7e3a59ff453e350a44bcb4cdd572eacea8fa6484bb'
        '8d6612aebf3c6f47d29be463542f5d9eaec2771bf64e6370740e0d8de75b1357f8721671af537d5d4040cb084eb4e2cc'
        '34d2466a0115af84e1b0042895983a1d06b89fb4ce6ea0486f3f3b823520ab82011a1d4b277227f8611560b1e7933fdc'
        'bb3a792b344525bda08839e151ce794b2f32c9b7a01fbac9e01cc87ebcc7d1f6cf0111c3a1e8aac71a908749d44fbd9a'
        'd0dadecbd50ada380339c32ac69136678df9317ce0b12b4ff79e59b743f5bb3af2d519ff27d9459cbf97222c15e6fc2a'
        '0f91fc719b941525fae59361ceb69cebc2a8645912baa8d1b6c1075ee3056a0c10d25065cb03a442e0ec6e0e1698db3b'
        '4c98a0be3278e9649f1f9532e0d392dfd3a0342b8971f21e1b0a74414ba3348cc5be7120c37632d8df359f8d9b992f2e'
        'e60b6f470fe3f11de54cda541edad891ce6279cfcd3e7e6f1618b166fd2c1d05848fd2c5f6fb2299f523f357a6327623'
        '93a8353156cccd02acf081625a75ebb56e16369788d273ccde96629281b949d04c50901b71c65614e6c6c7bd327a140a'
        '45e1d006c3f27b9ac9aa53fd62a80f00bb25bfe235bdd2f671126905b2040222b6cbcf7ccd769c2b53113ec01640e3d3'
        '38abbd602547adf0ba38209cf746ce7677afa1c52075606085cbfe4e8ae88dd87aaaf9b04cf9aa7e1948c25c02fb8a8c'
        '01c36ae4d6ebe1f990d4f869a65cdea03f09252dc208e69fb74e6132ce77e25b578fdfe33ac372e6'
        ::text as digits) d, generate_series(0, 1041) i;
end;

-- bcrypt ("$2a$", as in OpenBSD and pgcrypto's crypt-blowfish.c): EksBlowfish with 2^cost
-- rounds of key expansion, then "OrpheanBeholderScryDoubt" encrypted 64 times. The key is the
-- password's bytes and a NUL, repeated to 72 bytes. "$2x$" reproduces the old sign-extension bug
-- for bytes >= 0x80, so such hashes still verify.
-- In PL/pgSQL this takes about 0.2 s at gen_salt('bf')'s cost 6 (doubling with each step of cost).
create function _pgcrypto_bcrypt(pw bytea, setting text) returns text
language plpgsql immutable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    m constant bigint := 4294967295;
    itoa64 constant text := './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    b64 constant text := 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    init bigint[] := @extschema@._pgcrypto_bf_init();
    p bigint[] := init[1:18];
    s bigint[] := init[19:1042];  -- S0 at 1..256, S1 at 257..512, S2 at 513..768, S3 at 769..
    kw bigint[] := array_fill(0::bigint, array[18]);  -- the key's words
    sw bigint[] := array_fill(0::bigint, array[4]);   -- the salt's words
    salt bytea;
    key bytea := pw || '\x00'::bytea;
    bug boolean := substr(setting, 3, 1) = 'x';
    rounds bigint;
    l bigint;
    r bigint;
    t bigint;
    j int := 0;
    out bytea := '';
begin
    if setting !~ '^\$2[ax]\$([0-2][0-9]|3[01])\$[./A-Za-z0-9]{22}'
       or substr(setting, 5, 2)::int < 4 then
        raise exception 'invalid salt' using errcode = 'invalid_parameter_value';
    end if;
    rounds := 1::bigint << substr(setting, 5, 2)::int;
    salt := decode(translate(substr(setting, 8, 22), itoa64, b64) || '==', 'base64');
    for i in 1 .. 4 loop
        sw[i] := (get_byte(salt, 4 * i - 4)::bigint << 24) | (get_byte(salt, 4 * i - 3) << 16)
                 | (get_byte(salt, 4 * i - 2) << 8) | get_byte(salt, 4 * i - 1);
    end loop;
    for i in 1 .. 18 loop
        t := 0;
        for c in 1 .. 4 loop
            t := ((t << 8) | get_byte(key, j)) & m;
            if bug and get_byte(key, j) >= 128 then
                t := t | 4294967040;  -- (signed char) sign-extended over the word
            end if;
            j := (j + 1) % length(key);
        end loop;
        kw[i] := t;
        p[i] := p[i] # t;
    end loop;
    -- Phase 0 expands with the salt mixed into the running block; then 2^cost times the key's
    -- words and the salt's words are xored into P before an unsalted expansion.
    for phase in 0 .. 2 * rounds loop
        if phase > 0 then
            for i in 1 .. 18 loop
                p[i] := p[i] # case when phase % 2 = 1 then kw[i] else sw[(i - 1) % 4 + 1] end;
            end loop;
        end if;
        l := 0;
        r := 0;
        for blk in 0 .. 520 loop  -- 9 blocks replace P, 512 replace the S-boxes
            if phase = 0 then
                l := l # sw[blk % 2 * 2 + 1];
                r := r # sw[blk % 2 * 2 + 2];
            end if;
            -- Blowfish encryption of (l, r): 16 Feistel rounds, F(x) = ((S0 + S1) ^ S2) + S3
            l := l # p[1];
            for n in 1 .. 8 loop
                r := r # p[2 * n] # (((s[(l >> 24) + 1] + s[((l >> 16) & 255) + 257])
                                      # s[((l >> 8) & 255) + 513]) + s[(l & 255) + 769]) & m;
                l := l # p[2 * n + 1] # (((s[(r >> 24) + 1] + s[((r >> 16) & 255) + 257])
                                          # s[((r >> 8) & 255) + 513]) + s[(r & 255) + 769]) & m;
            end loop;
            t := r;
            r := l;
            l := t # p[18];
            if blk < 9 then
                p[2 * blk + 1] := l;
                p[2 * blk + 2] := r;
            else
                s[2 * blk - 17] := l;
                s[2 * blk - 16] := r;
            end if;
        end loop;
    end loop;
    -- "OrpheanBeholderScryDoubt" as three blocks, each encrypted 64 times
    for b in 0 .. 2 loop
        l := ('x' || encode(substr('OrpheanBeholderScryDoubt'::bytea, 8 * b + 1, 4), 'hex'))
             ::bit(32)::bigint;
        r := ('x' || encode(substr('OrpheanBeholderScryDoubt'::bytea, 8 * b + 5, 4), 'hex'))
             ::bit(32)::bigint;
        for k in 1 .. 64 loop
            l := l # p[1];
            for n in 1 .. 8 loop
                r := r # p[2 * n] # (((s[(l >> 24) + 1] + s[((l >> 16) & 255) + 257])
                                      # s[((l >> 8) & 255) + 513]) + s[(l & 255) + 769]) & m;
                l := l # p[2 * n + 1] # (((s[(r >> 24) + 1] + s[((r >> 16) & 255) + 257])
                                          # s[((r >> 8) & 255) + 513]) + s[(r & 255) + 769]) & m;
            end loop;
            t := r;
            r := l;
            l := t # p[18];
        end loop;
        out := out || substr(int8send(l), 5) || substr(int8send(r), 5);
    end loop;
    -- The salt as given, its 22nd character reduced to the 2 bits that were decoded, then the
    -- first 23 of the 24 output bytes (bcrypt's base64: "./A-Za-z0-9", no padding).
    return substr(setting, 1, 28)
           || substr(itoa64, ((strpos(itoa64, substr(setting, 29, 1)) - 1) & 48) + 1, 1)
           || translate(rtrim(encode(substr(out, 1, 23), 'base64'), '='), b64, itoa64);
end
$$;

-- The crypt(3) base64 of random bytes for a salt: "$1$" takes 6 bytes as two little-endian
-- 24-bit groups, low 6 bits first (crypt-gensalt.c).
create function gen_salt(text, integer) returns text
language plpgsql volatile strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
    kind text := translate($1, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
    rounds int := $2;
    r bytea;
    v int;
    salt text := '';
begin
    if kind = 'md5' then
        if rounds not in (0, 1000) then  -- MD5-crypt has a fixed 1000 rounds
            raise exception 'gen_salt: Incorrect number of rounds'
                using errcode = 'invalid_parameter_value';
        end if;
        r := @extschema@.gen_random_bytes(6);
        for g in 0 .. 1 loop
            v := get_byte(r, 3 * g) | (get_byte(r, 3 * g + 1) << 8)
                 | (get_byte(r, 3 * g + 2) << 16);
            for c in 1 .. 4 loop
                salt := salt || substr('./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
                                       (v & 63) + 1, 1);
                v := v >> 6;
            end loop;
        end loop;
        return '$1$' || salt;
    elsif kind = 'bf' then
        rounds := coalesce(nullif(rounds, 0), 6);  -- pgcrypto's default cost
        if rounds < 4 or rounds > 31 then
            raise exception 'gen_salt: Incorrect number of rounds'
                using errcode = 'invalid_parameter_value';
        end if;
        -- 16 random bytes in bcrypt's base64 ("./A-Za-z0-9", no padding): 22 characters
        return '$2a$' || lpad(rounds::text, 2, '0') || '$' || translate(
            rtrim(encode(@extschema@.gen_random_bytes(16), 'base64'), '='),
            'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/',
            './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789');
    elsif kind in ('des', 'xdes', 'sha256crypt', 'sha512crypt') then
        raise exception 'gen_salt: % is not available in localbase''s SQL stand-in for pgcrypto',
                kind
            using errcode = 'feature_not_supported', hint = 'Supported salt types: md5, bf.';
    end if;
    raise exception 'gen_salt: Unknown salt algorithm' using errcode = 'invalid_parameter_value';
end
$$;

create function gen_salt(text) returns text
language sql volatile strict parallel safe
return @extschema@.gen_salt($1, 0);

-- crypt(password, salt or stored hash): the algorithm comes from the salt's prefix, as in
-- pgcrypto's px-crypt.c ("$2$" is recognised there but has no implementation).
create function crypt(text, text) returns text
language plpgsql immutable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
    if starts_with($2, '$2a$') or starts_with($2, '$2x$') then
        return @extschema@._pgcrypto_bcrypt(convert_to($1, getdatabaseencoding()), $2);
    elsif starts_with($2, '$1$') then
        return @extschema@._pgcrypto_md5crypt(convert_to($1, getdatabaseencoding()),
                                              convert_to($2, getdatabaseencoding()));
    elsif starts_with($2, '$2$') then
        raise exception 'crypt(3) returned NULL'
            using errcode = 'external_routine_invocation_exception';
    end if;
    raise exception 'crypt: only md5 ($1$) and bf ($2a$, $2x$) salts are available in '
                    'localbase''s SQL stand-in for pgcrypto'
        using errcode = 'feature_not_supported',
              hint = 'des, xdes, sha256crypt and sha512crypt hashes cannot be computed.';
end
$$;

comment on function _pgcrypto_sha1(bytea) is
    'localbase SQL stand-in for pgcrypto: SHA-1 of the bytes (internal)';
comment on function _pgcrypto_algorithm(text) is
    'localbase SQL stand-in for pgcrypto: a supported digest name, or pgcrypto''s error (internal)';
comment on function _pgcrypto_hash(bytea, text) is
    'localbase SQL stand-in for pgcrypto: the digest of the bytes (internal)';
comment on function digest(bytea, text) is
    'localbase SQL stand-in for pgcrypto: md5, sha1, sha224, sha256, sha384 or sha512 digest';
comment on function digest(text, text) is
    'localbase SQL stand-in for pgcrypto: md5, sha1, sha224, sha256, sha384 or sha512 digest';
comment on function hmac(bytea, bytea, text) is
    'localbase SQL stand-in for pgcrypto: HMAC (RFC 2104) over one of digest()''s hashes';
comment on function hmac(text, text, text) is
    'localbase SQL stand-in for pgcrypto: HMAC (RFC 2104) over one of digest()''s hashes';
comment on function gen_random_bytes(integer) is
    'localbase SQL stand-in for pgcrypto: 1 to 1024 strong random bytes';
comment on function @extschema@.gen_random_uuid() is
    'localbase SQL stand-in for pgcrypto: core gen_random_uuid()';
comment on function _pgcrypto_md5crypt(bytea, bytea) is
    'localbase SQL stand-in for pgcrypto: MD5-crypt (internal to crypt)';
comment on function _pgcrypto_bf_init() is
    'localbase SQL stand-in for pgcrypto: Blowfish''s initial P-array and S-boxes (internal)';
comment on function _pgcrypto_bcrypt(bytea, text) is
    'localbase SQL stand-in for pgcrypto: bcrypt (internal to crypt)';
comment on function gen_salt(text, integer) is
    'localbase SQL stand-in for pgcrypto: a random salt for crypt(), md5 or bf with a cost';
comment on function gen_salt(text) is
    'localbase SQL stand-in for pgcrypto: a random salt for crypt(), md5 or bf (cost 6)';
comment on function crypt(text, text) is
    'localbase SQL stand-in for pgcrypto: md5 ($1$) or bcrypt ($2a$, $2x$) password hash';
