// Single-purpose WMI client with the GUIDs as immediates in code (no GUID text, no linked IID
// constants): one IWbemServices call (ExecQuery). build.sh compiles it; tests/test_yara_rules.py
// scans the objects.
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <wbemidl.h>

extern "C" HRESULT run_query(const wchar_t *resource, const wchar_t *query, IEnumWbemClassObject **rows)
{
    volatile GUID clsid = {0x4590F811, 0x1D3A, 0x11D0, {0x89, 0x1F, 0x00, 0xAA, 0x00, 0x4B, 0x2E, 0x24}};
    volatile GUID iid = {0xDC12A687, 0x737F, 0x11CF, {0x88, 0x4D, 0x00, 0xAA, 0x00, 0x4B, 0x2E, 0x24}};
    IWbemLocator *locator = NULL;
    IWbemServices *services = NULL;
    HRESULT hr = CoCreateInstance((const CLSID &)clsid, NULL, CLSCTX_INPROC_SERVER, (const IID &)iid,
                                  (void **)&locator);
    if (FAILED(hr))
        return hr;
    BSTR path = SysAllocString(resource);
    hr = locator->ConnectServer(path, NULL, NULL, NULL, 0, NULL, NULL, &services);
    SysFreeString(path);
    locator->Release();
    if (FAILED(hr))
        return hr;
    BSTR language = SysAllocString(L"WQL");
    BSTR text = SysAllocString(query);
    hr = services->ExecQuery(language, text, WBEM_FLAG_FORWARD_ONLY | WBEM_FLAG_RETURN_IMMEDIATELY, NULL, rows);
    SysFreeString(text);
    SysFreeString(language);
    services->Release();
    return hr;
}
