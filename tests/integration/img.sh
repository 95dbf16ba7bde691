# img.sh: helpers of the image tests, sourced after lib.sh.
# shellcheck shell=bash

# img_sql_insert PROJECT NAME VERSION FILE [ENCRYPT [HARDWARE [ROW]]]: put a
# completed upload of FILE and its image row in place with SQL (as the tus
# upload leaves them: contiguous chunk rows of ROW bytes, default 1 MiB,
# the last one shorter), PostgreSQL reading FILE itself. HARDWARE is an SQL
# text[] literal ('{}' default). Sets IMG_ID.
img_sql_insert() {
    local project=$1 name=$2 version=$3 file=$4 encrypt=${5:-false} hw=${6:-'{}'}
    local row=${7:-1048576} size uid sha
    size=$(stat -c %s "$file")
    sha=$(sha256sum "$file" | cut -c1-64)
    uid=$(od -An -tu1 -N26 /dev/urandom | tr -s ' ' '\n' | grep . |
        awk '{ printf "%s", substr("abcdefghijklmnopqrstuvwxyz234567", $1 % 32 + 1, 1) }')
    IMG_ID=$(ql_psql "
        WITH p AS (SELECT id FROM projects WHERE name = '$project'),
        u AS (INSERT INTO uploads (id, project_id, image_name, version, version_key,
                upload_length, upload_offset, hardware, encrypt, created_by,
                completed_at, expires_at)
            SELECT '$uid', p.id, '$name', '$version',
                (string_to_array('$version', '.')::int[] || '{0,0,0,0}'::int[])[1:4],
                $size, $size, '$hw', $encrypt, 'test', now(), now() + interval '1 day'
            FROM p RETURNING id, project_id),
        c AS (INSERT INTO image_chunks (upload_id, variant, off, data)
            SELECT u.id, 0, g * $row, pg_read_binary_file('$file', g * $row,
                least($row, $size - g * $row))
            FROM u, generate_series(0, ($size + $row - 1) / $row - 1) g RETURNING 1),
        i AS (INSERT INTO images (project_id, name, version, version_key, upload_id,
                size, sha256, hardware, encrypt, uploaded_by)
            SELECT u.project_id, '$name', '$version',
                (string_to_array('$version', '.')::int[] || '{0,0,0,0}'::int[])[1:4],
                u.id, $size, decode('$sha', 'hex'), '$hw', $encrypt, 'test' FROM u
            RETURNING id)
        SELECT i.id FROM i, (SELECT count(*) FROM c) n") && [ -n "$IMG_ID" ] ||
        ql__fail_at 1 "img_sql_insert $name $version: insert failed"
}

# img_variant_out ID VARIANT FILE: the image's chunk rows of VARIANT, in
# order, concatenated into FILE.
img_variant_out() {
    ql_psql "SELECT encode(c.data, 'hex') FROM image_chunks c JOIN images i
             ON i.upload_id = c.upload_id WHERE i.id = $1 AND c.variant = $2
             ORDER BY c.off" |
        python3 -c 'import sys
out = open(sys.argv[1], "wb")
for line in sys.stdin:
    out.write(bytes.fromhex(line.strip()))' "$3" ||
        ql__fail_at 1 "img_variant_out $1 $2: failed"
}

# img_sign PROJECT ID [JSON] [CURL ARGS...]: POST .../images/ID/sign in the
# api_admin_session (an empty body when JSON is "").
img_sign() {
    local p=$1 id=$2 body=${3:-}
    shift 3 2>/dev/null || shift $#
    if [ -n "$body" ]; then
        api POST "/api/v1/projects/$p/images/$id/sign" "$body"
    else
        api POST "/api/v1/projects/$p/images/$id/sign"
    fi
}

# img_tus_upload TOKEN PROJECT NAME VERSION FILE [ENCRYPT [HARDWARE [CHUNK]]]:
# upload FILE through the tus API with curl (creation, then PATCHes of
# CHUNK bytes, default 2000000); HARDWARE is the comma-separated list of
# Upload-Metadata. Sets IMG_ID from the last PATCH's Quarklink-Image-Id.
img_tus_upload() {
    local tok=$1 project=$2 name=$3 version=$4 file=$5 encrypt=${6:-false}
    local hw=${7:-} chunk=${8:-2000000} size off=0 i=0 m loc
    size=$(stat -c %s "$file")
    b64() { printf '%s' "$1" | base64 -w0; }
    m="project $(b64 "$project"),name $(b64 "$name"),version $(b64 "$version"),encrypt $(b64 "$encrypt")"
    [ -z "$hw" ] || m="$m,hardware $(b64 "$hw")"
    ql_curl -X POST -H "Authorization: Bearer $tok" -H 'Tus-Resumable: 1.0.0' \
        -H "Upload-Length: $size" -H "Upload-Metadata: $m" "$(admin_url /api/v1/uploads/)"
    assert_status 201 "tus creation of $name $version"
    loc=$(ql_header Location) || ql__fail_at 1 "tus creation: no Location"
    loc=/api/v1/uploads/${loc##*/}
    IMG_ID=
    while [ "$off" -lt "$size" ]; do
        dd if="$file" of="$T/tus.piece" bs="$chunk" skip="$i" count=1 status=none
        ql_curl -X PATCH -H "Authorization: Bearer $tok" -H 'Tus-Resumable: 1.0.0' \
            -H 'Content-Type: application/offset+octet-stream' -H "Upload-Offset: $off" \
            --data-binary "@$T/tus.piece" "$(admin_url "$loc")"
        assert_status 204 "tus PATCH of $name at $off"
        off=$((off + $(stat -c %s "$T/tus.piece")))
        i=$((i + 1))
    done
    IMG_ID=$(ql_header Quarklink-Image-Id) && [ -n "$IMG_ID" ] ||
        ql__fail_at 1 "tus upload of $name $version: no image id after the last PATCH"
}
